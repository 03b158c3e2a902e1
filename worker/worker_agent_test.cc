#include "worker/worker_agent.h"

#include <atomic>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "common/base/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/testing/fake_coordinator_client.h"

namespace ddlm {
namespace {

// A runner that runs until the test releases it or the agent stops it.
class FakeRunner : public AttemptRunner {
 public:
  explicit FakeRunner(AttemptRef attempt) : attempt_(std::move(attempt)) {}
  absl::Status Run() override {
    started_.Notify();
    absl::MutexLock lock(&mu_);
    auto over = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopped_ || released_; };
    mu_.Await(absl::Condition(&over));
    return stopped_ ? absl::CancelledError("stopped") : result_;
  }
  void RequestStop() override {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }
  const AttemptRef& attempt() const override { return attempt_; }

  void Release(absl::Status result) {
    absl::MutexLock lock(&mu_);
    result_ = std::move(result);
    released_ = true;
  }
  void AwaitStarted() { started_.WaitForNotification(); }

 private:
  const AttemptRef attempt_;
  absl::Notification started_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status result_ ABSL_GUARDED_BY(mu_);
};

WorkerCommand Assign(const std::string& job, int32_t attempt) {
  WorkerCommand command;
  AttemptRef& ref = *command.mutable_assign()->mutable_attempt();
  ref.set_job_id(job);
  ref.set_attempt(attempt);
  return command;
}

WorkerCommand CancelOf(const std::string& job, int32_t attempt) {
  WorkerCommand command;
  command.mutable_cancel()->set_job_id(job);
  command.mutable_cancel()->set_attempt(attempt);
  return command;
}

// An agent on the fake client, running Run on its own thread.
class WorkerAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterResponse response;
    response.set_heartbeat_interval_ms(1);
    response.set_heartbeat_timeout_ms(10'000);
    client_.set_register_response(response);
  }

  void Start() {
    WorkerAgentOptions options;
    options.worker_id = "w0";
    options.host = "127.0.0.1";
    options.device = "cpu";
    options.initial_backoff = absl::ZeroDuration();
    options.reregister_pause = absl::ZeroDuration();
    options.finish_backoff = absl::ZeroDuration();
    options.new_incarnation = [this] { return ++incarnations_; };
    agent_ = std::make_unique<WorkerAgent>(&client_, &clock_, options, [this](const Assignment& a, const WorkerRef& w) {
      auto runner = std::make_shared<FakeRunner>(a.attempt());
      absl::MutexLock lock(&mu_);
      runners_.push_back(runner);
      run_by_.push_back(w);
      return runner;
    });
    thread_ = std::thread([this] { result_ = agent_->Run(); });
  }

  absl::Status Stop() {
    agent_->Shutdown();
    thread_.join();
    return result_;
  }

  void TearDown() override {
    if (thread_.joinable()) (void)Stop();  // A test that checks the result stops it itself.
  }

  std::shared_ptr<FakeRunner> Runner(size_t i) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, i]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return runners_.size() > i; };
    mu_.Await(absl::Condition(&enough));
    return runners_[i];
  }

  FakeCoordinatorClient client_;
  FakeClock clock_;
  std::atomic<uint64_t> incarnations_{100};
  std::unique_ptr<WorkerAgent> agent_;
  std::thread thread_;
  absl::Status result_;
  absl::Mutex mu_;
  std::vector<std::shared_ptr<FakeRunner>> runners_ ABSL_GUARDED_BY(mu_);
  std::vector<WorkerRef> run_by_ ABSL_GUARDED_BY(mu_);
};

TEST_F(WorkerAgentTest, RegistersRunsAnAssignmentReportsItsEndAndDeregisters) {
  Start();
  client_.AwaitStreams(1);
  ASSERT_EQ(client_.registrations().size(), 1u);
  const RegisterRequest first = client_.registrations()[0];
  EXPECT_EQ(first.worker().worker_id(), "w0");
  EXPECT_EQ(first.worker().incarnation(), 101u);
  EXPECT_EQ(first.host(), "127.0.0.1");
  EXPECT_EQ(first.device(), "cpu");

  client_.PushCommand(Assign("job-1", 1));
  Runner(0)->Release(absl::OkStatus());
  client_.AwaitFinishes(1);
  const FinishAssignmentRequest finish = client_.finishes()[0];
  EXPECT_TRUE(finish.ok());
  EXPECT_FALSE(finish.cancelled());
  EXPECT_EQ(finish.attempt().job_id(), "job-1");
  EXPECT_EQ(finish.worker().incarnation(), 101u);
  {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(run_by_[0].incarnation(), 101u);
  }
  client_.AwaitHeartbeats(2);  // It heartbeats while it lives.

  EXPECT_TRUE(Stop().ok());
  ASSERT_EQ(client_.deregistrations().size(), 1u);
  EXPECT_EQ(client_.deregistrations()[0].incarnation(), 101u);
  EXPECT_EQ(client_.registrations().size(), 1u);
}

TEST_F(WorkerAgentTest, CancelStopsTheRunningAttemptAndReportsItCancelled) {
  Start();
  client_.PushCommand(Assign("job-1", 3));
  Runner(0)->AwaitStarted();
  client_.PushCommand(CancelOf("job-1", 2));  // Another attempt: reported, not stopped.
  client_.AwaitFinishes(1);
  EXPECT_TRUE(client_.finishes()[0].cancelled());
  EXPECT_EQ(client_.finishes()[0].attempt().attempt(), 2);

  client_.PushCommand(CancelOf("job-1", 3));
  client_.AwaitFinishes(2);
  const FinishAssignmentRequest finish = client_.finishes()[1];
  EXPECT_EQ(finish.attempt().attempt(), 3);
  EXPECT_FALSE(finish.ok());
  EXPECT_TRUE(finish.cancelled());
  EXPECT_EQ(finish.error(), "stopped");
}

TEST_F(WorkerAgentTest, ARefusedHeartbeatEndsTheIncarnationAndItsRunner) {
  Start();
  client_.PushCommand(Assign("job-1", 1));
  Runner(0)->AwaitStarted();
  client_.set_heartbeat_status(absl::AbortedError("declared dead"));
  client_.AwaitRegistrations(2);
  client_.set_heartbeat_status(absl::OkStatus());
  const std::vector<RegisterRequest> regs = client_.registrations();
  EXPECT_EQ(regs[0].worker().incarnation(), 101u);
  EXPECT_EQ(regs[1].worker().incarnation(), 102u);  // A fresh incarnation.
  // The old incarnation's runner was stopped; its end is reported (and the coordinator
  // may refuse it: that incarnation is over).
  client_.AwaitFinishes(1);
  EXPECT_EQ(client_.finishes()[0].worker().incarnation(), 101u);
  EXPECT_FALSE(client_.finishes()[0].ok());
  client_.AwaitStreams(2);
}

TEST_F(WorkerAgentTest, UnansweredHeartbeatsReRegisterOnlyPastTheTimeout) {
  Start();
  client_.AwaitStreams(1);
  client_.set_heartbeat_status(absl::UnavailableError("coordinator gone"));
  const int before = client_.heartbeats();
  client_.AwaitHeartbeats(before + 5);  // Five failures within the timeout: still registered.
  EXPECT_EQ(client_.registrations().size(), 1u);
  clock_.Advance(absl::Seconds(11));  // Past the 10 s the coordinator gave.
  client_.AwaitRegistrations(2);
  EXPECT_EQ(client_.registrations()[1].worker().incarnation(), 102u);
}

TEST_F(WorkerAgentTest, ABrokenStreamReRegisters) {
  Start();
  client_.AwaitStreams(1);
  client_.EndStream(absl::UnavailableError("connection reset"));
  client_.AwaitRegistrations(2);
  client_.AwaitStreams(2);
}

TEST_F(WorkerAgentTest, RetriesAnUnreachableCoordinatorAndStopsAtARefusal) {
  client_.QueueRegisterResult(absl::UnavailableError("connection refused"));
  client_.QueueRegisterResult(absl::UnknownError("cut off"));
  client_.QueueRegisterResult(absl::PermissionDeniedError("worker id bound to another token"));
  Start();
  thread_.join();
  EXPECT_EQ(result_.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(client_.registrations().size(), 3u);
  EXPECT_TRUE(client_.deregistrations().empty());  // Never registered.
}

TEST_F(WorkerAgentTest, ShutdownStopsTheRunnerAndSaysSo) {
  Start();
  client_.PushCommand(Assign("job-1", 1));
  Runner(0)->AwaitStarted();
  EXPECT_TRUE(Stop().ok());
  ASSERT_EQ(client_.finishes().size(), 1u);
  EXPECT_FALSE(client_.finishes()[0].ok());
  EXPECT_FALSE(client_.finishes()[0].cancelled());  // Not a user's cancel.
  EXPECT_EQ(client_.finishes()[0].error(), "the worker was shut down");
  EXPECT_EQ(client_.deregistrations().size(), 1u);
}

TEST(WorkerAgentFunctions, RefusalsAndIncarnations) {
  EXPECT_TRUE(IsRefusal(absl::StatusCode::kPermissionDenied));
  EXPECT_TRUE(IsRefusal(absl::StatusCode::kUnauthenticated));
  EXPECT_TRUE(IsRefusal(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(IsRefusal(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(IsRefusal(absl::StatusCode::kUnknown));
  EXPECT_NE(RandomIncarnation(), 0u);
  EXPECT_NE(RandomIncarnation(), RandomIncarnation());
}

}  // namespace
}  // namespace ddlm
