#include "common/base/token_corpus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/base/synthetic_corpus.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name); }

// A corpus with what a tokenizer gets wrong: \r\n and lone \r line ends, Unicode spaces,
// blank lines, a last line without a newline, words repeated across splits.
std::string TrickyCorpus(const std::string& name) {
  const std::string dir = TempPath(name);
  EXPECT_TRUE(MakeDirectories(dir).ok());
  std::string train;
  for (int i = 0; i < 200; ++i) {
    absl::StrAppend(&train, "the cat", i % 7, " sat\r\n", "on\xC2\xA0the mat", i % 13, "\r", "\n\n",
                    "caf\xC3\xA9 \xE2\x80\x83 dog", i % 3, "\n");
  }
  absl::StrAppend(&train, "old\rmac\rline ends\r", "last line");
  EXPECT_TRUE(WriteFileAtomically(dir + "/train.txt", train).ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/valid.txt", "the new words\nand cat1\n").ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/test.txt", "mat12 unseen\r\nx\ronly\rcarriage returns\r").ok());
  return dir;
}

void ExpectSameAsLoadCorpus(const std::string& corpus_dir, const std::string& out_dir, size_t chunk_bytes) {
  TokenizeOptions options;
  options.chunk_bytes = chunk_bytes;
  auto summary = BuildTokenCorpus(corpus_dir, out_dir, options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  auto expected = LoadCorpus(corpus_dir);
  ASSERT_TRUE(expected.ok()) << expected.status();
  auto opened = OpenTokenCorpus(out_dir);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->dictionary.words(), expected->dictionary.words()) << "chunk " << chunk_bytes;
  EXPECT_EQ(summary->vocabulary_size, expected->dictionary.size());
  const std::vector<int64_t>* want[] = {&expected->train, &expected->valid, &expected->test};
  const TokenFile* got[] = {opened->train.get(), opened->valid.get(), opened->test.get()};
  for (int s = 0; s < 3; ++s) {
    std::vector<int64_t> ids;
    got[s]->CopyIds(0, got[s]->tokens(), &ids);
    EXPECT_EQ(ids, *want[s]) << "split " << s << ", chunk " << chunk_bytes;
  }
  EXPECT_EQ(summary->train, static_cast<int64_t>(expected->train.size()));
  EXPECT_EQ(summary->test, static_cast<int64_t>(expected->test.size()));
}

TEST(TokenCorpusTest, TheFilesHoldExactlyWhatLoadCorpusReadsWhateverTheChunk) {
  const std::string dir = TrickyCorpus("tricky");
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64}, size_t{4} << 20}) {
    ExpectSameAsLoadCorpus(dir, TempPath(absl::StrCat("tricky-out-", chunk)), chunk);
  }
}

TEST(TokenCorpusTest, TheQuickstartCorpusRoundTripsAndProgressIsReported) {
  const std::string dir = TempPath("synthetic");
  ASSERT_TRUE(MakeDirectories(dir).ok());
  SyntheticCorpus corpus = MakeQuickstartCorpus();
  ASSERT_TRUE(WriteFileAtomically(dir + "/train.txt", corpus.train).ok());
  ASSERT_TRUE(WriteFileAtomically(dir + "/valid.txt", corpus.valid).ok());
  ASSERT_TRUE(WriteFileAtomically(dir + "/test.txt", corpus.test).ok());
  ExpectSameAsLoadCorpus(dir, TempPath("synthetic-out"), 4096);

  int64_t last_read = 0, last_written = 0, calls = 0;
  bool monotonic = true;
  TokenizeOptions options;
  options.chunk_bytes = 4096;
  options.progress = [&](int64_t read, int64_t written) {
    monotonic = monotonic && read >= last_read && written >= last_written;
    last_read = read;
    last_written = written;
    ++calls;
  };
  auto summary = BuildTokenCorpus(dir, TempPath("synthetic-progress"), options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(monotonic);
  EXPECT_GT(calls, 10);
  const int64_t text = static_cast<int64_t>(corpus.train.size() + corpus.valid.size() + corpus.test.size());
  EXPECT_EQ(summary->text_bytes, text);
  EXPECT_EQ(last_read, 2 * text);  // Both passes.
  EXPECT_EQ(last_written, summary->train + summary->valid + summary->test);

  // Asked to stop in the second pass: CANCELLED, and no whole entry (no vocab.txt).
  int asked = 0;
  options.progress = nullptr;
  options.stop = [&] { return ++asked > calls / 2 + 3; };
  auto stopped = BuildTokenCorpus(dir, TempPath("synthetic-stopped"), options);
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(asked, calls / 2 + 4);  // It stopped at the first chunk after the answer changed.
  EXPECT_FALSE(ReadFile(TempPath("synthetic-stopped/vocab.txt")).ok());
}

TEST(TokenCorpusTest, BadTextIsNamedAndDamagedOrMismatchedFilesAreDataLoss) {
  const std::string dir = TrickyCorpus("bad");
  ASSERT_TRUE(WriteFileAtomically(dir + "/valid.txt", "fine\nstill fine\nbad \xFF byte\n").ok());
  TokenizeOptions small_chunks;
  small_chunks.chunk_bytes = 5;  // The bad byte is found in a later chunk: its position is still the file's.
  auto bad = BuildTokenCorpus(dir, TempPath("bad-out"), small_chunks);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("valid.txt is not valid UTF-8: bad byte 0xff at line 3, byte offset 20"));

  ASSERT_TRUE(WriteFileAtomically(dir + "/valid.txt", "").ok());
  auto empty = BuildTokenCorpus(dir, TempPath("bad-out"));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("valid.txt is empty"));

  ASSERT_TRUE(WriteFileAtomically(dir + "/valid.txt", "a b\n").ok());
  ASSERT_TRUE(std::remove((dir + "/test.txt").c_str()) == 0);
  auto missing = BuildTokenCorpus(dir, TempPath("bad-out"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("test.txt"));

  const std::string a = TempPath("a-out"), b = TempPath("b-out");
  ASSERT_TRUE(BuildTokenCorpus(TrickyCorpus("a"), a).ok());
  const std::string other = TrickyCorpus("b");
  ASSERT_TRUE(WriteFileAtomically(other + "/test.txt", "entirely different words\n").ok());
  ASSERT_TRUE(BuildTokenCorpus(other, b).ok());
  // b's test split beside a's vocabulary.
  ASSERT_TRUE(WriteFileAtomically(a + "/test.tok", *ReadFile(b + "/test.tok")).ok());
  auto mixed = OpenTokenCorpus(a);
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(mixed.status().message(), HasSubstr("another vocabulary"));

  std::string vocabulary = *ReadFile(b + "/vocab.txt");
  vocabulary[vocabulary.size() - 2] ^= 1;
  ASSERT_TRUE(WriteFileAtomically(b + "/vocab.txt", vocabulary).ok());
  auto damaged = OpenTokenCorpus(b);
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(damaged.status().message(), HasSubstr("vocab.txt' is damaged: its checksum does not match"));
}

}  // namespace
}  // namespace ddlm
