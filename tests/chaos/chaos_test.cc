// The chaos test: a job whose workers and coordinator are SIGKILLed at random points
// restarts on its own and ends bit-identical to the same job run without a fault.

#include <cstdlib>
#include <random>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/chaos/chaos_trial.h"

namespace ddlm::testing {
namespace {

std::string StateDir(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

TEST(ChaosTest, KilledWorkersAndCoordinatorEndBitIdenticalToAnUninterruptedRun) {
  ChaosOptions straight;
  straight.state_dir = StateDir("straight");
  straight.worker_kills = 0;
  straight.coordinator_kills = 0;
  absl::StatusOr<TrialResult> expected = RunTrial(straight);
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
