#include "common/base/checkpoint_format.h"

#include <cstring>
#include <string>
#include <vector>

#include "common/base/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

CheckpointHeader Header() {
  CheckpointHeader h;
  h.mutable_position()->set_epoch(3);
  h.mutable_position()->set_global_step(120);
  h.set_lr(5);
  h.add_vocabulary("<eos>");
  return h;
}

const std::string kWeights(24, '\x01');  // 2 x 3 float32.
const std::string kRng = "abcde";        // 5 uint8.

std::vector<CheckpointTensorBytes> Tensors() {
  return {{"param/w", FLOAT32, {2, 3}, kWeights}, {"rng/cpu", UINT8, {5}, kRng}};
}

// A file framed by hand as the format says (magic, version, header length, header,
// area, CRC-32 of all before it), so that a crafted header gets a valid CRC.
std::string Frame(const CheckpointHeader& header, const std::string& area, uint32_t version = 1) {
  std::string out = "DDLMCKPT";
  const std::string h = header.SerializeAsString();
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((version >> (8 * i)) & 0xFF));
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((uint64_t{h.size()} >> (8 * i)) & 0xFF));
  out += h;
  out += area;
  const uint32_t crc = Crc32(out);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  return out;
}

TEST(CheckpointFormatTest, AnEncodedFileParsesBackToItsHeaderAndTensorBytes) {
  absl::StatusOr<std::string> bytes = EncodeCheckpoint(Header(), Tensors());
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<CheckpointView> view = ParseCheckpointView(*bytes, "test");
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->header.position().global_step(), 120);
  EXPECT_EQ(view->header.vocabulary(0), "<eos>");
  ASSERT_EQ(view->tensors.size(), 2u);
  EXPECT_EQ(view->tensors[0].entry.name(), "param/w");
  EXPECT_EQ(view->tensors[0].entry.offset(), 0u);
  EXPECT_EQ(view->tensors[0].bytes, kWeights);
  EXPECT_EQ(view->tensors[1].entry.offset(), 24u);
  EXPECT_EQ(view->tensors[1].bytes, kRng);
  // The same bytes as a hand-framed file: the layout is the documented one.
  EXPECT_EQ(*bytes, Frame(view->header, kWeights + kRng));
}

TEST(CheckpointFormatTest, DamagedOrForeignFilesAreRefusedNamingTheSource) {
  const std::string good = *EncodeCheckpoint(Header(), Tensors());
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x10;
  absl::Status crc = ParseCheckpointView(flipped, "upload-3").status();
  EXPECT_EQ(crc.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(crc.message(), HasSubstr("upload-3"));
  EXPECT_THAT(crc.message(), HasSubstr("CRC-32 mismatch"));
  EXPECT_EQ(ParseCheckpointView(good.substr(0, good.size() - 1), "x").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseCheckpointView("DDLM", "x").status().code(), absl::StatusCode::kDataLoss);
  std::string foreign = good;
  foreign[0] = 'X';
  EXPECT_THAT(ParseCheckpointView(foreign, "x").status().message(), HasSubstr("magic"));
  absl::StatusOr<CheckpointView> view = ParseCheckpointView(good, "x");
  EXPECT_EQ(ParseCheckpointView(Frame(view->header, kWeights + kRng, /*version=*/2), "x").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CheckpointFormatTest, AnIndexThatDoesNotFitTheAreaIsRefusedDespiteAValidCrc) {
  const CheckpointHeader good = ParseCheckpointView(*EncodeCheckpoint(Header(), Tensors()), "x")->header;
  const std::string area = kWeights + kRng;
  auto refused = [&](CheckpointHeader h, absl::string_view why) {
    absl::Status s = ParseCheckpointView(Frame(h, area), "crafted").status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << why;
    EXPECT_THAT(s.message(), HasSubstr(why));
  };
  CheckpointHeader past_end = good;
  past_end.mutable_tensors(1)->set_offset(25);  // 5 bytes from 25 end past the 29.
  refused(past_end, "does not fit its index entry");
  CheckpointHeader wrong_size = good;
  wrong_size.mutable_tensors(0)->set_nbytes(20);
  refused(wrong_size, "does not fit its index entry");
  CheckpointHeader negative = good;
  negative.mutable_tensors(0)->set_shape(0, -2);
  refused(negative, "invalid shape");
  CheckpointHeader overflow = good;
  overflow.mutable_tensors(0)->set_shape(0, int64_t{1} << 62);
  refused(overflow, "invalid shape");
  CheckpointHeader twice = good;
  twice.mutable_tensors(1)->set_name("param/w");
  refused(twice, "appears twice");
  CheckpointHeader unknown = good;
  unknown.mutable_tensors(1)->set_dtype(static_cast<TensorDType>(9));
  refused(unknown, "unknown tensor dtype");
}

TEST(CheckpointFormatTest, EncodingRefusesBytesThatDoNotMatchTheirShapeOrARepeatedName) {
  std::vector<CheckpointTensorBytes> short_bytes = Tensors();
  short_bytes[0].bytes = absl::string_view(kWeights).substr(1);
  EXPECT_EQ(EncodeCheckpoint(Header(), short_bytes).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<CheckpointTensorBytes> twice = Tensors();
  twice[1].name = "param/w";
  twice[1].dtype = FLOAT32;
  twice[1].shape = {6};
  twice[1].bytes = kWeights;
  EXPECT_THAT(EncodeCheckpoint(Header(), twice).status().message(), HasSubstr("appears twice"));
  std::vector<CheckpointTensorBytes> untyped = Tensors();
  untyped[1].dtype = DTYPE_UNSPECIFIED;
  EXPECT_EQ(EncodeCheckpoint(Header(), untyped).status().code(), absl::StatusCode::kInvalidArgument);
  // No bytes, but dimensions whose product (each counted as at least 1) overflows: no
  // tensor of that shape can be made (the checkpoint fuzzer's find).
  std::vector<CheckpointTensorBytes> unmakeable = Tensors();
  unmakeable[0].shape = {0, int64_t{1} << 62, 4};
  unmakeable[0].bytes = "";
  EXPECT_EQ(EncodeCheckpoint(Header(), unmakeable).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ddlm
