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

TEST(WorkerRegistryTest, DeadWorkersAreForgottenAfterTheGracePeriod) {
  WorkerRegistry registry(absl::Seconds(10));
  absl::Time t = absl::UnixEpoch();
  ASSERT_TRUE(registry.Register(Ref("silent", 1), "h", "cpu", t).ok());
  ASSERT_TRUE(registry.Register(Ref("left", 1), "h", "cpu", t).ok());
  ASSERT_TRUE(registry.Register(Ref("alive", 1), "h", "cpu", t).ok());
  registry.MarkDead("left", t + absl::Seconds(5));
  ASSERT_TRUE(registry.Heartbeat(Ref("alive", 1), t + absl::Seconds(9)).ok());
  ASSERT_EQ(registry.ExpireStale(t + absl::Seconds(11)).size(), 1u);  // "silent", at 11 s.
  EXPECT_TRUE(registry.PruneDead(t + absl::Seconds(65), absl::Minutes(1)).empty());
  // "left" died at 5 s: gone after 65 s; "silent" (11 s) stays until after 71 s.
  ASSERT_TRUE(registry.Heartbeat(Ref("alive", 1), t + absl::Seconds(18)).ok());
  EXPECT_EQ(registry.PruneDead(t + absl::Seconds(66), absl::Minutes(1)), std::vector<std::string>{"left"});
  EXPECT_EQ(registry.List().size(), 2u);
  EXPECT_EQ(registry.Heartbeat(Ref("left", 1), t).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry.Heartbeat(Ref("silent", 1), t).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(registry.PruneDead(t + absl::Seconds(72), absl::Minutes(1)), std::vector<std::string>{"silent"});
  ASSERT_EQ(registry.List().size(), 1u);
  EXPECT_EQ(registry.List()[0].worker_id(), "alive");  // The live one is never pruned.
}

}  // namespace
}  // namespace ddlm
