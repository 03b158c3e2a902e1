#include "coordinator/scheduler.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<FreeWorker> Workers(const std::vector<std::string>& devices) {
  std::vector<FreeWorker> out;
  for (size_t i = 0; i < devices.size(); ++i) out.push_back({"w" + std::to_string(i), devices[i]});
  return out;
}

TEST(SchedulerTest, StartsJobsInOrderOnTheOldestFreeWorkers) {
  SchedulePlan plan = PlanSchedule({{"job-1", 2}, {"job-2", 1}}, Workers({"cpu", "cpu", "cpu"}), 3);
  ASSERT_EQ(plan.start.size(), 2u);
  EXPECT_EQ(plan.start[0].job_id, "job-1");
  EXPECT_THAT(plan.start[0].workers, ElementsAre("w0", "w1"));
  EXPECT_EQ(plan.start[1].job_id, "job-2");
  EXPECT_THAT(plan.start[1].workers, ElementsAre("w2"));
  EXPECT_TRUE(plan.waiting.empty());
}

TEST(SchedulerTest, AJobNeverOvertakesAnOlderOne) {
  // job-1 needs 3 of the 2 free workers; job-2 would fit but waits behind it.
  SchedulePlan plan = PlanSchedule({{"job-1", 3}, {"job-2", 1}}, Workers({"cpu", "cpu"}), 5);
  EXPECT_TRUE(plan.start.empty());
  EXPECT_EQ(plan.waiting["job-1"], "waiting for 3 free worker(s): 2 free of 5 registered");
  EXPECT_EQ(plan.waiting["job-2"], "waiting behind job-1");
}

TEST(SchedulerTest, AJobsRanksAreOfOneDeviceKind) {
  // Mixed free workers: the 2-rank job takes the two GPUs, skipping the CPU between them.
  SchedulePlan plan = PlanSchedule({{"job-1", 2}}, Workers({"cuda:0", "cpu", "cuda:1"}), 3);
  ASSERT_EQ(plan.start.size(), 1u);
  EXPECT_THAT(plan.start[0].workers, ElementsAre("w0", "w2"));

  plan = PlanSchedule({{"job-1", 2}, {"job-2", 1}}, Workers({"cpu", "cuda:0"}), 2);
  EXPECT_TRUE(plan.start.empty());
  EXPECT_THAT(plan.waiting["job-1"], HasSubstr("of one device kind"));
  EXPECT_THAT(plan.waiting["job-1"], HasSubstr("free: 1 cpu, 1 cuda"));
  EXPECT_EQ(plan.waiting["job-2"], "waiting behind job-1");
}

TEST(SchedulerTest, WorkersTakenByAnEarlierJobAreNotCountedForALaterOne) {
  SchedulePlan plan = PlanSchedule({{"job-1", 2}, {"job-2", 2}}, Workers({"cpu", "cpu", "cpu"}), 3);
  ASSERT_EQ(plan.start.size(), 1u);
  EXPECT_EQ(plan.waiting["job-2"], "waiting for 2 free worker(s): 1 free of 3 registered");
}

TEST(SchedulerTest, AJobAllowedFewerWorkersTakesAsManyOfOneKindAsAreFree) {
  // Wants 4, may go on with 2: 3 free, of which 2 CPUs and 1 GPU.
  SchedulePlan plan = PlanSchedule({{"job-1", 4, 2}}, Workers({"cpu", "cuda:0", "cpu"}), 3);
  ASSERT_EQ(plan.start.size(), 1u);
  EXPECT_THAT(plan.start[0].workers, ElementsAre("w0", "w2"));
  // Only 1 free: it waits, and says for how many.
  plan = PlanSchedule({{"job-1", 4, 2}, {"job-2", 1}}, Workers({"cpu"}), 1);
  EXPECT_TRUE(plan.start.empty());
  EXPECT_THAT(plan.waiting["job-1"], HasSubstr("waiting for 2 free worker(s): 1 free"));
  // Never more than num_workers.
  plan = PlanSchedule({{"job-1", 2, 1}, {"job-2", 1}}, Workers({"cpu", "cpu", "cpu"}), 3);
  ASSERT_EQ(plan.start.size(), 2u);
  EXPECT_THAT(plan.start[0].workers, ElementsAre("w0", "w1"));
  EXPECT_THAT(plan.start[1].workers, ElementsAre("w2"));
}

}  // namespace
}  // namespace ddlm
