#include "coordinator/checkpoint_upload.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "common/base/file_io.h"
#include "common/training/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

class CheckpointUploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/state-" +
                            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    store_ = std::make_unique<JobStore>(dir);
    ASSERT_TRUE(store_->Init().ok());
    JobRecord record;
    record.mutable_job()->set_id("job-1");
    ASSERT_TRUE(store_->WriteSnapshot(record).ok());
    model_.set_type(LSTM);
    model_.set_emsize(4);
    model_.set_nhid(4);
    ref_.set_job_id("job-1");
    ref_.set_attempt(2);
  }

  // A checkpoint of `model` with `words` vocabulary words, at epoch 1, step 10.
  std::string Bytes(const ModelConfig& model, int words) {
    Checkpoint c;
    *c.header.mutable_spec()->mutable_model() = model;
    for (int i = 0; i < words; ++i) c.header.add_vocabulary("w" + std::to_string(i));
    c.header.mutable_position()->set_epoch(1);
    c.header.mutable_position()->set_global_step(10);
    c.tensors["param/w"] = torch::ones({16});
    return *SerializeCheckpoint(c);
  }

  std::unique_ptr<CheckpointUpload> Start(int64_t max_bytes, absl::Status keep_answer = absl::OkStatus()) {
    CheckpointUpload::Expected expected;
    expected.max_bytes = max_bytes;
    expected.model = model_;
    expected.vocabulary_size = 5;
    auto upload = CheckpointUpload::Create(
        store_.get(), ref_, "upload-2-1.partial", expected,
        [this, keep_answer](const std::string& staging, const CheckpointInfo& info) -> absl::StatusOr<CheckpointInfo> {
          ++keeps_;
          kept_staging_ = staging;
          if (!keep_answer.ok()) return keep_answer;
          return info;
        });
    EXPECT_TRUE(upload.ok()) << upload.status();
    return upload.ok() ? std::move(*upload) : nullptr;
  }

  std::string Staging() const { return store_->CheckpointPath("job-1", "upload-2-1.partial"); }

  std::unique_ptr<JobStore> store_;
  ModelConfig model_;
  AttemptRef ref_;
  int keeps_ = 0;
  std::string kept_staging_;
};

TEST_F(CheckpointUploadTest, AVerifiedUploadIsHandedToKeepInPieces) {
  const std::string bytes = Bytes(model_, 5);
  auto upload = Start(1 << 20);
  ASSERT_TRUE(upload->Append(absl::string_view(bytes).substr(0, 100)).ok());
  ASSERT_TRUE(upload->Append(absl::string_view(bytes).substr(100)).ok());
  EXPECT_EQ(upload->bytes(), static_cast<int64_t>(bytes.size()));
  auto info = upload->Finish();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id(), "e0001-s00000010");
  EXPECT_EQ(info->attempt(), 2);
  EXPECT_EQ(info->size_bytes(), static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(keeps_, 1);
  EXPECT_EQ(kept_staging_, "upload-2-1.partial");
  EXPECT_EQ(*ReadFile(Staging()), bytes);  // Written through, not held in memory.
  EXPECT_EQ(upload->Append("more").code(), absl::StatusCode::kFailedPrecondition);
  upload.reset();
  EXPECT_TRUE(Exists(Staging()));  // Kept: keep owns the file now.
}

TEST_F(CheckpointUploadTest, BytesPastTheJobsBoundAreRefusedAndLeaveNothing) {
  auto upload = Start(1000);
  ASSERT_TRUE(upload->Append(std::string(600, 'x')).ok());
  const absl::Status past = upload->Append(std::string(600, 'x'));
  EXPECT_EQ(past.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(past.message(), HasSubstr("passes 1000 bytes"));
  EXPECT_EQ(upload->bytes(), 600);
  EXPECT_TRUE(Exists(Staging()));
  upload.reset();
  EXPECT_FALSE(Exists(Staging()));
  EXPECT_EQ(keeps_, 0);
}

TEST_F(CheckpointUploadTest, BytesThatAreNoCheckpointAreDataLoss) {
  auto upload = Start(1 << 20);
  ASSERT_TRUE(upload->Append("not a checkpoint at all").ok());
  EXPECT_EQ(upload->Finish().status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(keeps_, 0);
  upload.reset();
  EXPECT_FALSE(Exists(Staging()));
}

TEST_F(CheckpointUploadTest, AnotherModelOrVocabularyIsRefused) {
  ModelConfig other = model_;
  other.set_nhid(8);
  for (const auto& [bytes, what] : {std::pair<std::string, std::string>{Bytes(other, 5), "its model is not the job's"},
                                    {Bytes(model_, 6), "its vocabulary has 6 words, the job's 5"}}) {
    auto upload = Start(1 << 20);
    ASSERT_TRUE(upload->Append(bytes).ok());
    const absl::Status refused = upload->Finish().status();
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(refused.message(), HasSubstr(what));
    upload.reset();
    EXPECT_FALSE(Exists(Staging()));
  }
  EXPECT_EQ(keeps_, 0);
}

TEST_F(CheckpointUploadTest, AnUploadKeepRefusesIsRemoved) {
  auto upload = Start(1 << 20, absl::AbortedError("attempt 2 is no longer current"));
  ASSERT_TRUE(upload->Append(Bytes(model_, 5)).ok());
  EXPECT_EQ(upload->Finish().status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(keeps_, 1);
  upload.reset();
  EXPECT_FALSE(Exists(Staging()));
}

}  // namespace
}  // namespace ddlm
