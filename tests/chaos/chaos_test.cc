// The chaos test: a job whose workers and coordinator are SIGKILLed at random points
// restarts on its own and ends bit-identical to the same job run without a fault.

#include <signal.h>

#include <cstdlib>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/chaos/chaos_trial.h"
#include "tests/cluster.h"

namespace ddlm::testing {
namespace {

std::string StateDir(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

// The uninterrupted run every trial must end like, run once per test process.
const absl::StatusOr<TrialResult>& Uninterrupted() {
  static const auto* const run =
      new absl::StatusOr<TrialResult>(RunTrial(ChaosOptions::Uninterrupted(StateDir("straight"))));
  return *run;
}

TEST(ChaosTest, KilledWorkersAndCoordinatorEndBitIdenticalToAnUninterruptedRun) {
  const absl::StatusOr<TrialResult>& expected = Uninterrupted();
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_EQ(expected->state, SUCCEEDED) << expected->message;
  ASSERT_EQ(expected->val_loss.size(), 3u);
  ASSERT_TRUE(expected->test_loss.has_value());
  EXPECT_EQ(expected->restarts, 0);

  // A new seed each run (printed, so that a failure can be replayed with
  // DDLM_CHAOS_SEED).
  ChaosOptions chaos;
  chaos.state_dir = StateDir("chaos");
  chaos.seed = std::random_device()();
  if (const char* seed = std::getenv("DDLM_CHAOS_SEED")) chaos.seed = std::strtoull(seed, nullptr, 10);
  chaos.worker_kills = 3;
  chaos.coordinator_kills = 1;
  std::printf("chaos seed %llu\n", static_cast<unsigned long long>(chaos.seed));
  absl::StatusOr<TrialResult> got = RunTrial(chaos);
  ASSERT_TRUE(got.ok()) << got.status() << " (seed " << chaos.seed << ")";
  const std::string actions = absl::StrJoin(got->actions, "\n  ");
  std::printf("seed %llu:\n  %s\n", static_cast<unsigned long long>(chaos.seed), actions.c_str());
  EXPECT_EQ(got->state, SUCCEEDED) << got->message << "\n  " << actions;
  EXPECT_EQ(got->worker_kills, 3) << actions;
  EXPECT_EQ(got->coordinator_kills, 1) << actions;
  EXPECT_GE(got->restarts, 4) << actions;  // One per kill, at least.

  // Bit-identical: every epoch's validation loss and the test loss.
  ASSERT_EQ(got->val_loss.size(), expected->val_loss.size()) << actions;
  for (const auto& [epoch, loss] : expected->val_loss) {
    EXPECT_EQ(got->val_loss[epoch], loss) << "epoch " << epoch << ", seed " << chaos.seed << "\n  " << actions;
  }
  EXPECT_EQ(got->test_loss, expected->test_loss) << "seed " << chaos.seed << "\n  " << actions;
  std::string why;
  EXPECT_TRUE(SameOutcome(*got, *expected, &why)) << why;
}

}  // namespace
}  // namespace ddlm::testing

namespace ddlm::testing {
namespace {

TEST(ChaosTest, WithMinWorkersAJobGoesOnWithTheWorkersLeft) {
  Cluster cluster(StateDir("fewer"),
                  {"--heartbeat_interval_ms=200", absl::StrCat("--heartbeat_timeout_ms=", kHeartbeatTimeoutMs)});
  ASSERT_TRUE(cluster.Start());
  ASSERT_TRUE(cluster.AddWorker("w0", {"--collective_timeout_s=30"}));
  ASSERT_TRUE(cluster.AddWorker("w1", {"--collective_timeout_s=30"}));
  JobSpec spec = ChaosJob();
  spec.set_min_workers(1);
  auto job = cluster.Submit(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  // After epoch 1's end, w1 dies and no replacement comes.
  std::vector<JobEvent> first =
      cluster.Watch(job->id(), [](const JobEvent& e) { return e.has_checkpoint() && e.checkpoint().batch() == 0; });
  ASSERT_FALSE(first.empty());
  cluster.workers()[1]->Signal(SIGKILL);
  cluster.workers()[1]->Wait();
  std::vector<JobEvent> rest = cluster.Watch(job->id(), nullptr, first.back().sequence());
  ASSERT_EQ(FinalState(rest), SUCCEEDED) << cluster.workers()[0]->output();
  bool resharded = false;
  for (const JobEvent& e : rest) {
    resharded |= e.has_state() && e.state().state() == RUNNING &&
                 e.state().message().find("not bit-identical") != std::string::npos;
  }
  EXPECT_TRUE(resharded);
  std::map<int32_t, double> epochs;
  for (const JobEvent& e : rest) {
    if (e.has_epoch()) epochs[e.epoch().epoch()] = e.epoch().val_loss();
  }
  EXPECT_EQ(epochs.size(), 2u);  // Epochs 2 and 3, on one worker.
  absl::StatusOr<Job> done = cluster.Get(job->id());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->spec().num_workers(), 1);
  EXPECT_THAT(done->workers(), ::testing::ElementsAre("w0"));
  EXPECT_TRUE(done->has_test_ppl());
}

}  // namespace
}  // namespace ddlm::testing

namespace ddlm::testing {
namespace {

TEST(ChaosTest, ACoordinatorKilledMidJobComesBackAndItsLiveWorkersFinishTheJob) {
  const absl::StatusOr<TrialResult>& expected = Uninterrupted();
  ASSERT_TRUE(expected.ok()) << expected.status();

  ChaosOptions once;
  once.state_dir = StateDir("coordinator_once");
  once.worker_kills = 0;
  once.coordinator_kills = 1;
  absl::StatusOr<TrialResult> got = RunTrial(once);
  ASSERT_TRUE(got.ok()) << got.status();
  const std::string actions = absl::StrJoin(got->actions, "\n  ");
  ASSERT_EQ(got->coordinator_kills, 1) << actions;
  // The same two worker processes registered again and finished the job: no
  // replacement was started, and the job restarted once, by itself.
  EXPECT_EQ(actions.find("started worker"), std::string::npos) << actions;
  EXPECT_EQ(got->restarts, 1);
  std::string why;
  EXPECT_TRUE(SameOutcome(*got, *expected, &why)) << why << "\n  " << actions;
}

}  // namespace
}  // namespace ddlm::testing

namespace ddlm::testing {
namespace {

// Kills at every phase of an attempt (EveryPhase(): a fixed list, so that each phase is
// killed in every run), each trial ending bit-identical to the uninterrupted run.
class PhaseKillTest : public ::testing::TestWithParam<size_t> {};

TEST_P(PhaseKillTest, EndsBitIdenticalToAnUninterruptedRun) {
  const absl::StatusOr<TrialResult>& expected = Uninterrupted();
  ASSERT_TRUE(expected.ok()) << expected.status();
  ChaosOptions options;
  options.phase_kills = EveryPhase()[GetParam()];
  options.state_dir = StateDir(absl::StrCat("phase", GetParam()));
  absl::StatusOr<TrialResult> got = RunTrial(options);
  ASSERT_TRUE(got.ok()) << got.status();
  const std::string actions = absl::StrJoin(got->actions, "\n  ");
  std::printf("%s\n  %s\n", ::testing::UnitTest::GetInstance()->current_test_info()->name(), actions.c_str());
  // (RunTrial fails unless every planned kill happened where it was planned.)
  EXPECT_GE(got->restarts, static_cast<int>(options.phase_kills.size())) << actions;  // One per kill, at least.
  std::string why;
  EXPECT_TRUE(SameOutcome(*got, *expected, &why)) << why << "\n  " << actions;
}

std::string PhaseName(const ::testing::TestParamInfo<size_t>& info) {
  std::string name;
  const std::vector<std::vector<PhaseKill>> phases = EveryPhase();
  for (const PhaseKill& kill : phases[info.param]) {
    absl::StrAppend(&name, name.empty() ? "" : "_then_", kill.failpoint, kill.hit > 1 ? absl::StrCat(kill.hit) : "",
                    kill.kill_coordinator ? "_coordinator" : "_worker");
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(EveryPhase, PhaseKillTest, ::testing::Range<size_t>(0, EveryPhase().size()), PhaseName);

}  // namespace
}  // namespace ddlm::testing
