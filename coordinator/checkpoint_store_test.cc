#include "coordinator/checkpoint_store.h"

#include <cmath>

#include "common/training/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Upload(int epoch, int64_t step, double val_loss, double best) {
  Checkpoint c;
  c.header.mutable_position()->set_epoch(epoch);
  c.header.mutable_position()->set_global_step(step);
  c.header.set_lr(5);
  c.header.set_val_loss(val_loss);
  c.header.set_best_val_loss(best);
  c.tensors["param/w"] = torch::ones({3});
  return *SerializeCheckpoint(c);
}

CheckpointInfo Info(const std::string& id, bool best) {
  CheckpointInfo c;
  c.set_id(id);
  c.set_best(best);
  return c;
}

std::vector<std::string> Ids(const google::protobuf::RepeatedPtrField<CheckpointInfo>& kept) {
  std::vector<std::string> ids;
  for (const CheckpointInfo& c : kept) ids.push_back(c.id() + (c.best() ? "*" : ""));
  return ids;
}

TEST(CheckpointStoreTest, AnUploadIsVerifiedAndDescribed) {
  const std::string bytes = Upload(2, 10, 2.5, 2.5);
  auto info = DescribeUpload(bytes, 3, "upload for job-1");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id(), "e0002-s00000010");
  EXPECT_EQ(info->epoch(), 2);
  EXPECT_EQ(info->global_step(), 10);
  EXPECT_TRUE(info->best());  // Its validation loss is the best so far.
  EXPECT_DOUBLE_EQ(info->val_ppl(), std::exp(2.5));
  EXPECT_EQ(info->size_bytes(), bytes.size());
  EXPECT_EQ(info->attempt(), 3);
  EXPECT_FALSE(DescribeUpload(Upload(3, 20, 2.7, 2.5), 3, "x")->best());

  std::string damaged = bytes;
  damaged[damaged.size() / 2] ^= 1;
  absl::Status bad = DescribeUpload(damaged, 3, "upload for job-1").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.message(), HasSubstr("upload for job-1"));
}

TEST(CheckpointStoreTest, KeptListReplacesMovesTheBestMarkAndPrunes) {
  google::protobuf::RepeatedPtrField<CheckpointInfo> kept;
  EXPECT_TRUE(AddToKept(&kept, Info("a", true), 1).empty());
  EXPECT_TRUE(AddToKept(&kept, Info("b", false), 1).empty());  // Latest b, best a.
  EXPECT_THAT(AddToKept(&kept, Info("c", false), 1), ElementsAre("b"));
  EXPECT_THAT(Ids(kept), ElementsAre("a*", "c"));
  EXPECT_TRUE(AddToKept(&kept, Info("c", false), 1).empty());  // Re-written: replaced, not doubled.
  EXPECT_THAT(Ids(kept), ElementsAre("a*", "c"));
  EXPECT_THAT(AddToKept(&kept, Info("d", true), 1), ElementsAre("a", "c"));  // d is latest and best.
  EXPECT_THAT(Ids(kept), ElementsAre("d*"));
}

TEST(CheckpointStoreTest, ARequestNamesBestLatestOrAnId) {
  google::protobuf::RepeatedPtrField<CheckpointInfo> kept;
  EXPECT_EQ(ResolveCheckpoint(kept, "best", "job-1").status().code(), absl::StatusCode::kFailedPrecondition);
  *kept.Add() = Info("a", false);
  EXPECT_EQ(*ResolveCheckpoint(kept, "", "job-1"), "a");  // No best yet: the latest.
  *kept.Add() = Info("b", true);
  *kept.Add() = Info("c", false);
  EXPECT_EQ(*ResolveCheckpoint(kept, "", "job-1"), "b");
  EXPECT_EQ(*ResolveCheckpoint(kept, "best", "job-1"), "b");
  EXPECT_EQ(*ResolveCheckpoint(kept, "latest", "job-1"), "c");
  EXPECT_EQ(*ResolveCheckpoint(kept, "a", "job-1"), "a");
  absl::Status unknown = ResolveCheckpoint(kept, "z", "job-1").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.message(), HasSubstr("job-1"));
}

}  // namespace
}  // namespace ddlm
