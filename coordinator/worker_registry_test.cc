#include "coordinator/worker_registry.h"

#include "gtest/gtest.h"

namespace ddlm {
namespace {

WorkerRef Ref(const std::string& id, uint64_t incarnation) {
  WorkerRef ref;
  ref.set_worker_id(id);
  ref.set_incarnation(incarnation);
  return ref;
}

TEST(WorkerRegistryTest, RegisterRejectsEmptyFields) {
  WorkerRegistry registry(absl::Seconds(10));
  absl::Time t = absl::UnixEpoch();
  EXPECT_EQ(registry.Register(Ref("", 1), "h", "cpu", t).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Register(Ref("w", 0), "h", "cpu", t).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Register(Ref("w", 1), "", "cpu", t).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.live_count(), 0);
}

TEST(WorkerRegistryTest, StaleIncarnationIsAbortedAndUnknownIsNotFound) {
  WorkerRegistry registry(absl::Seconds(10));
  absl::Time t = absl::UnixEpoch();
  ASSERT_TRUE(registry.Register(Ref("w", 1), "h", "cpu", t).ok());
  ASSERT_TRUE(registry.Register(Ref("w", 2), "h", "cpu", t).ok());
  EXPECT_EQ(registry.Heartbeat(Ref("w", 1), t).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(registry.Heartbeat(Ref("w", 2), t).ok());
  EXPECT_EQ(registry.Heartbeat(Ref("x", 2), t).code(), absl::StatusCode::kNotFound);
}

TEST(WorkerRegistryTest, ReplacingABusyIncarnationReturnsIt) {
  WorkerRegistry registry(absl::Seconds(10));
  absl::Time t = absl::UnixEpoch();
  ASSERT_TRUE(registry.Register(Ref("w", 1), "h", "cpu", t).ok());
  registry.Get("w")->info.set_state(BUSY);
  registry.Get("w")->info.set_job_id("job-1");
  auto replaced = registry.Register(Ref("w", 2), "h", "cpu", t);
  ASSERT_TRUE(replaced.ok());
  ASSERT_TRUE(replaced->has_value());
  EXPECT_EQ((*replaced)->info.job_id(), "job-1");
  EXPECT_EQ(registry.Get("w")->info.state(), IDLE);
}

TEST(WorkerRegistryTest, MissedHeartbeatsMakeAWorkerDead) {
  WorkerRegistry registry(absl::Seconds(10));
  absl::Time t = absl::UnixEpoch();
  ASSERT_TRUE(registry.Register(Ref("a", 1), "h", "cpu", t).ok());
  ASSERT_TRUE(registry.Register(Ref("b", 1), "h", "cpu", t).ok());
  ASSERT_TRUE(registry.Heartbeat(Ref("b", 1), t + absl::Seconds(8)).ok());
  EXPECT_TRUE(registry.ExpireStale(t + absl::Seconds(10)).empty());  // Exactly at the limit.
  std::vector<WorkerEntry> dead = registry.ExpireStale(t + absl::Seconds(11));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].info.worker_id(), "a");
  EXPECT_EQ(registry.Get("a")->info.state(), DEAD);
  EXPECT_EQ(registry.Heartbeat(Ref("a", 1), t + absl::Seconds(12)).code(), absl::StatusCode::kAborted);
  ASSERT_EQ(registry.Idle().size(), 1u);
  EXPECT_EQ(registry.Idle()[0]->info.worker_id(), "b");
  EXPECT_EQ(registry.live_count(), 1);
  // Registering again brings it back.
  ASSERT_TRUE(registry.Register(Ref("a", 7), "h", "cpu", t + absl::Seconds(13)).ok());
  EXPECT_EQ(registry.live_count(), 2);
}

TEST(WorkerRegistryTest, IdleIsInRegistrationOrder) {
  WorkerRegistry registry(absl::Seconds(10));
  absl::Time t = absl::UnixEpoch();
  ASSERT_TRUE(registry.Register(Ref("z", 1), "h", "cpu", t).ok());
  ASSERT_TRUE(registry.Register(Ref("a", 1), "h", "cpu", t).ok());
  std::vector<WorkerEntry*> idle = registry.Idle();
  ASSERT_EQ(idle.size(), 2u);
  EXPECT_EQ(idle[0]->info.worker_id(), "z");
  EXPECT_EQ(idle[1]->info.worker_id(), "a");
}

}  // namespace
}  // namespace ddlm
