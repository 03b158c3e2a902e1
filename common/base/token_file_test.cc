#include "common/base/token_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/base/sharding.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name); }

// Writes `ids` in pieces of 3, as a streaming tokenizer would.
void Write(const std::string& path, const std::vector<int64_t>& ids, int64_t vocabulary, uint64_t fingerprint = 42) {
  auto writer = TokenFileWriter::Create(path, vocabulary, fingerprint);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (size_t i = 0; i < ids.size(); i += 3) {
    std::vector<int64_t> piece(ids.begin() + i, ids.begin() + std::min(ids.size(), i + 3));
    ASSERT_TRUE((*writer)->Append(piece).ok());
  }
  ASSERT_TRUE((*writer)->Finish().ok());
}

TEST(TokenFileTest, IdsAreTwoBytesUpTo65536WordsAndFourBeyond) {
  EXPECT_EQ(TokenWidth(1), 2);
  EXPECT_EQ(TokenWidth(65536), 2);
  EXPECT_EQ(TokenWidth(65537), 4);
  const std::vector<int64_t> small = {0, 65535, 7, 1, 2, 3, 65535};
  Write(TempPath("small.tok"), small, 65536);
  auto a = TokenFile::Open(TempPath("small.tok"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->width(), 2);
  EXPECT_EQ(static_cast<int64_t>(ReadFile(TempPath("small.tok"))->size()), kTokenFileHeaderBytes + 2 * 7);

  const std::vector<int64_t> large = {65536, 0, 1000000, 65535};
  Write(TempPath("large.tok"), large, 1000001);
  auto b = TokenFile::Open(TempPath("large.tok"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->width(), 4);
  EXPECT_EQ(static_cast<int64_t>(ReadFile(TempPath("large.tok"))->size()), kTokenFileHeaderBytes + 4 * 4);
  std::vector<int64_t> back;
  (*b)->CopyIds(0, (*b)->tokens(), &back);
  EXPECT_EQ(back, large);
  EXPECT_EQ((*b)->vocabulary_size(), 1000001);
  EXPECT_EQ((*b)->fingerprint(), 42u);
}

TEST(TokenFileTest, AWriterAskingForFourBytesGetsThemAndTheIdsReadAsInt32) {
  const std::string path = TempPath("wide.tok");
  auto writer = TokenFileWriter::Create(path, 100, 9, /*min_width=*/4);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append({99, 0, 42}).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  auto file = TokenFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->width(), 4);
  const int32_t* raw = static_cast<const int32_t*>((*file)->raw_ids());
  EXPECT_EQ(raw[0], 99);
  EXPECT_EQ(raw[1], 0);
  EXPECT_EQ(raw[2], 42);
  EXPECT_EQ(TokenFileWriter::Create(TempPath("odd.tok"), 100, 9, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TokenFileTest, AFileOfSeveralVerificationPiecesOpensAndStillReadsAfterItsPagesAreReleased) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < 5000000; ++i) ids.push_back((i * 40503) % 30000);  // 2.4 pieces of 2^21 ids.
  const std::string path = TempPath("pieces.tok");
  auto writer = TokenFileWriter::Create(path, 30000, 1);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(ids).ok());
  ASSERT_TRUE((*writer)->Finish().ok());
  auto file = TokenFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  (*file)->ReleasePages();
  EXPECT_EQ((**file)[4999999], ids[4999999]);
  EXPECT_EQ((**file)[2097152], ids[2097152]);
  // A flipped id in the last piece is found.
  std::string bytes = *ReadFile(path);
  bytes[kTokenFileHeaderBytes + 2 * 4900000] ^= 1;
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  EXPECT_EQ(TokenFile::Open(path).status().code(), absl::StatusCode::kDataLoss);
}

TEST(TokenFileTest, ARangeEncodesAsTheShardOfTheSameIds) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 1000; ++i) ids.push_back((i * 7919) % 500);
  Write(TempPath("shard.tok"), ids, 500);
  auto file = TokenFile::Open(TempPath("shard.tok"));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tokens(), 1000);
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 1000}, {123, 456}, {999, 1000}, {5, 5}}) {
    EXPECT_EQ((*file)->EncodeInt32(begin, end), EncodeTokenIds(ids, begin, end)) << begin << ".." << end;
  }
  EXPECT_EQ((**file)[321], ids[321]);
}

TEST(TokenFileTest, AFileLargerThanTheWriteBufferReadsBackWhole) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < 700000; ++i) ids.push_back((i * 2654435761) % 40000);  // 1.4 MB of uint16: several flushes.
  const std::string path = TempPath("flushed.tok");
  auto writer = TokenFileWriter::Create(path, 40000, 7);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (size_t i = 0; i < ids.size(); i += 100000) {
    ASSERT_TRUE((*writer)->Append(std::vector<int64_t>(ids.begin() + i, ids.begin() + i + 100000)).ok());
  }
  ASSERT_TRUE((*writer)->Finish().ok());
  auto file = TokenFile::Open(path);  // Checks the CRC chained over every flush.
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<int64_t> back;
  (*file)->CopyIds(0, (*file)->tokens(), &back);
  EXPECT_EQ(back, ids);
}

TEST(TokenFileTest, ADamagedOrTruncatedFileIsDataLossNamingIt) {
  const std::vector<int64_t> ids = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::string good = TempPath("good.tok");
  Write(good, ids, 10);
  const std::string bytes = *ReadFile(good);
  auto expect_refused = [&](const std::string& name, std::string damaged, const std::string& what) {
    const std::string path = TempPath(name);
    ASSERT_TRUE(WriteFileAtomically(path, damaged).ok());
    auto opened = TokenFile::Open(path);
    ASSERT_FALSE(opened.ok()) << name;
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << opened.status();
    EXPECT_THAT(opened.status().message(), HasSubstr(path));
    EXPECT_THAT(opened.status().message(), HasSubstr(what));
  };
  std::string flipped_id = bytes;
  flipped_id[kTokenFileHeaderBytes + 3] ^= 1;
  expect_refused("flipped_id.tok", flipped_id, "ids' checksum");
  std::string flipped_header = bytes;
  flipped_header[17] ^= 1;  // The token count.
  expect_refused("flipped_header.tok", flipped_header, "header's checksum");
  expect_refused("truncated.tok", bytes.substr(0, bytes.size() - 2), "bytes follow it");
  expect_refused("short.tok", bytes.substr(0, 10), "less than its header");
  expect_refused("magic.tok", "XXXXXXXX" + bytes.substr(8), "DDLMTOK1");
  EXPECT_EQ(TokenFile::Open(TempPath("absent.tok")).status().code(), absl::StatusCode::kNotFound);
}

TEST(TokenFileTest, AnIdOutsideTheVocabularyIsRefusedAndAnUnfinishedFileNeverAppears) {
  const std::string path = TempPath("unfinished.tok");
  {
    auto writer = TokenFileWriter::Create(path, 10, 1);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append({1, 2}).ok());
    absl::Status refused = (*writer)->Append({3, 10});
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(refused.message(), HasSubstr("token id 10 (token 3)"));
    refused = (*writer)->Append({-1});
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  }  // Dropped without Finish.
  EXPECT_EQ(ReadFile(path).status().code(), absl::StatusCode::kNotFound);
  for (const std::string& name : ListDirectory(std::getenv("TEST_TMPDIR"))) {
    EXPECT_THAT(name, ::testing::Not(HasSubstr("unfinished.tok.tmp")));  // No temporary file left.
  }
  EXPECT_EQ(TokenFileWriter::Create(path, 0, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ddlm
