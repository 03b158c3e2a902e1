#include "coordinator/worker_registry.h"

#include <optional>
#include <vector>

#include "gtest/gtest.h"

namespace ddlm {
namespace {

// Records what the registry pushed to it.
class RecordingSink : public StreamSink<WorkerCommand> {
 public:
  void Send(const WorkerCommand& command) override { sent.push_back(command); }
  void Close(const absl::Status& status) override { closed = status; }
  std::vector<WorkerCommand> sent;
  std::optional<absl::Status> closed;
};

WorkerCommand Cancel(int32_t attempt) {
  WorkerCommand command;
  command.mutable_cancel()->set_attempt(attempt);
  return command;
}

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

TEST(WorkerRegistryTest, OnlyAReleaseNamingTheHeldAttemptFreesAWorker) {
  WorkerRegistry registry(absl::Seconds(10));
  ASSERT_TRUE(registry.Register(Ref("w", 1), "h", "cpu", absl::UnixEpoch()).ok());
  registry.Reserve(*registry.Get("w"), "job-1", 2, /*rank=*/3);
  EXPECT_TRUE(registry.Idle().empty());
  EXPECT_EQ(registry.Holding("w", "job-1", 2), registry.Get("w"));
  EXPECT_EQ(registry.Holding("w", "job-1", 1), nullptr);
  EXPECT_FALSE(registry.Release("w", "job-1", 1));  // An older attempt of the job.
  EXPECT_FALSE(registry.Release("w", "job-2", 2));  // Another job's attempt 2.
  EXPECT_EQ(registry.Get("w")->info.state(), BUSY);
  EXPECT_TRUE(registry.Release("w", "job-1", 2));
  const WorkerInfo& info = registry.Get("w")->info;
  EXPECT_EQ(info.state(), IDLE);
  EXPECT_EQ(info.job_id(), "");
  EXPECT_EQ(info.rank(), 0);  // Reset, not left at the old rank.
  EXPECT_EQ(registry.Get("w")->attempt, 0);
  EXPECT_FALSE(registry.Release("w", "job-1", 2));  // Once.
  EXPECT_FALSE(registry.Release("nobody", "job-1", 2));
}

TEST(WorkerRegistryTest, CommandsWaitInTheOutboxUntilAStreamAttaches) {
  WorkerRegistry registry(absl::Seconds(10));
  ASSERT_TRUE(registry.Register(Ref("w", 1), "h", "cpu", absl::UnixEpoch()).ok());
  registry.Send("w", Cancel(1));
  registry.Send("w", Cancel(2));
  registry.Send("nobody", Cancel(9));  // Dropped.
  RecordingSink first;
  ASSERT_TRUE(registry.AttachStream(Ref("w", 1), &first).ok());
  registry.Send("w", Cancel(3));
  ASSERT_EQ(first.sent.size(), 3u);
  EXPECT_EQ(first.sent[0].cancel().attempt(), 1);
  EXPECT_EQ(first.sent[2].cancel().attempt(), 3);
  EXPECT_TRUE(registry.Get("w")->outbox.empty());

  // A second stream replaces the first, which is closed ABORTED.
  RecordingSink second;
  ASSERT_TRUE(registry.AttachStream(Ref("w", 1), &second).ok());
  ASSERT_TRUE(first.closed.has_value());
  EXPECT_EQ(first.closed->code(), absl::StatusCode::kAborted);
  registry.Send("w", Cancel(4));
  EXPECT_EQ(first.sent.size(), 3u);
  ASSERT_EQ(second.sent.size(), 1u);

  // Detached: not closed, and commands wait in the outbox again.
  registry.DetachStream(&second);
  registry.Send("w", Cancel(5));
  EXPECT_FALSE(second.closed.has_value());
  EXPECT_EQ(registry.Get("w")->outbox.size(), 1u);

  // A stale incarnation attaches nothing; a dead worker loses its outbox.
  RecordingSink stale;
  EXPECT_EQ(registry.AttachStream(Ref("w", 0), &stale).code(), absl::StatusCode::kAborted);
  registry.MarkDead("w", absl::UnixEpoch());
  EXPECT_TRUE(registry.Get("w")->outbox.empty());
}

TEST(WorkerRegistryTest, CloseStreamsClosesWithTheStatusGiven) {
  WorkerRegistry registry(absl::Seconds(10));
  ASSERT_TRUE(registry.Register(Ref("a", 1), "h", "cpu", absl::UnixEpoch()).ok());
  ASSERT_TRUE(registry.Register(Ref("b", 1), "h", "cpu", absl::UnixEpoch()).ok());
  RecordingSink a, b;
  ASSERT_TRUE(registry.AttachStream(Ref("a", 1), &a).ok());
  ASSERT_TRUE(registry.AttachStream(Ref("b", 1), &b).ok());
  registry.CloseStream("a", absl::AbortedError("left"));
  ASSERT_TRUE(a.closed.has_value());
  EXPECT_EQ(a.closed->message(), "left");
  registry.Send("a", Cancel(1));  // No stream now: the outbox.
  EXPECT_TRUE(a.sent.empty());
  registry.CloseAllStreams(absl::UnavailableError("shutting down"));
  ASSERT_TRUE(b.closed.has_value());
  EXPECT_EQ(b.closed->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a.closed->message(), "left");  // Closed once only.
}

}  // namespace
}  // namespace ddlm
