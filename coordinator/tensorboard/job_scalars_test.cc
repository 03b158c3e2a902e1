#include "coordinator/tensorboard/job_scalars.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace ddlm {
namespace {

JobEvent Training(int epoch, int64_t batch, int64_t num_batches, double loss) {
  JobEvent e;
  e.set_unix_micros(1700000000000000 + batch);
  TrainingMetrics& m = *e.mutable_training();
  m.set_epoch(epoch);
  m.set_batch(batch);
  m.set_num_batches(num_batches);
  m.set_loss(loss);
  m.set_ppl(2 * loss);
  m.set_lr(20);
  m.set_tokens_per_second(1234);
  m.set_ms_per_batch(40);
  m.set_allreduce_ms_per_batch(3.5);
  return e;
}

std::map<std::string, double> AsMap(const ScalarPoint& p) { return {p.scalars.begin(), p.scalars.end()}; }

TEST(JobScalarsTest, TrainingMetricsAreOnTheGlobalStepAxis) {
  JobScalars scalars;
  auto p = scalars.Add(Training(2, 39, 100, 5.0));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->step, 100 + 39 + 1);
  EXPECT_EQ(p->wall_time, absl::FromUnixMicros(1700000000000039));
  const std::map<std::string, double> want = {{"train/loss", 5.0},        {"train/ppl", 10.0},
                                              {"train/lr", 20},           {"train/tokens_per_second", 1234},
                                              {"train/ms_per_batch", 40}, {"train/allreduce_ms_per_batch", 3.5}};
  EXPECT_EQ(AsMap(*p), want);
}

TEST(JobScalarsTest, EpochResultsLandOnTheEpochsLastStepAndTestOnTheLastStep) {
  JobScalars scalars;
  ASSERT_TRUE(scalars.Add(Training(1, 79, 100, 5.0)).has_value());
  JobEvent epoch;
  epoch.mutable_epoch()->set_epoch(1);
  epoch.mutable_epoch()->set_val_loss(4.5);
  epoch.mutable_epoch()->set_val_ppl(90.0);
  epoch.mutable_epoch()->set_lr(5);
  epoch.mutable_epoch()->set_seconds(12);
  auto p = scalars.Add(epoch);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->step, 100);
  EXPECT_EQ(AsMap(*p), (std::map<std::string, double>{
                           {"val/loss", 4.5}, {"val/ppl", 90}, {"val/next_lr", 5}, {"epoch/seconds", 12}}));
  JobEvent test;
  test.mutable_test()->set_test_loss(4.4);
  test.mutable_test()->set_test_ppl(81.5);
  p = scalars.Add(test);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->step, 100);
  EXPECT_EQ(AsMap(*p), (std::map<std::string, double>{{"test/loss", 4.4}, {"test/ppl", 81.5}}));
}

TEST(JobScalarsTest, AnEpochBeforeAnyTrainingMetricsUsesTheEpochNumber) {
  JobScalars scalars;
  JobEvent epoch;
  epoch.mutable_epoch()->set_epoch(3);
  auto p = scalars.Add(epoch);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->step, 3);
}

TEST(JobScalarsTest, StateChangesAndCheckpointsAddNothing) {
  JobScalars scalars;
  JobEvent state;
  state.mutable_state()->set_state(RUNNING);
  EXPECT_FALSE(scalars.Add(state).has_value());
  JobEvent checkpoint;
  checkpoint.mutable_checkpoint()->set_id("e0002-s00000040");
  EXPECT_FALSE(scalars.Add(checkpoint).has_value());
}

}  // namespace
}  // namespace ddlm
