// fault_benchmark: chaos trials (tests/chaos/chaos_trial.h), each a 2-worker job whose
// workers are SIGKILLed 3 times and its coordinator once at random points, against
// uninterrupted runs of the same job interleaved with them on the same machine.
// Prints each trial's seed and what it killed, then a table: trials, kills, restarts,
// trials that finished and trials bit-identical to the uninterrupted run, and the
// extra time a trial took.
//
//   bazel run -c opt //tests/chaos:fault_benchmark -- --trials=20
//
// Replay one trial with --trials=1 --seed=SEED.

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/cli.h"
#include "common/base/file_io.h"
#include "tests/chaos/chaos_trial.h"

ABSL_FLAG(int32_t, trials, 20, "Chaos trials to run.");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the first trial (the next ones add 1); 0: random.");
ABSL_FLAG(int32_t, worker_kills, 3, "Workers SIGKILLed per trial.");
ABSL_FLAG(int32_t, coordinator_kills, 1, "Coordinator SIGKILLs per trial.");
ABSL_FLAG(int32_t, baseline_every, 4, "An uninterrupted run before the first trial and after every this many.");
ABSL_FLAG(int32_t, heartbeat_timeout_ms, 1500,
          "The coordinator's --heartbeat_timeout_ms (chaos_test runs with 5000, for margin on a loaded machine).");
ABSL_FLAG(std::string, state_root, "/tmp/ddlm_fault_benchmark", "Where the trials' state directories go.");

namespace {

using ddlm::testing::ChaosOptions;
using ddlm::testing::RunTrial;
using ddlm::testing::TrialResult;

struct Spread {
  double median = 0, min = 0, max = 0;
};

Spread Of(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {median, v.front(), v.back()};
}

std::string Show(const Spread& s) { return absl::StrFormat("%.1f (%.1f-%.1f)", s.median, s.min, s.max); }

}  // namespace

int main(int argc, char** argv) {
  ddlm::ParseFlagsOrExit(argc, argv, "fault_benchmark",
                         "fault_benchmark [--trials N] [--seed S]: chaos trials against uninterrupted runs");
  const int trials = absl::GetFlag(FLAGS_trials);
  const int every = std::max(1, absl::GetFlag(FLAGS_baseline_every));
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed == 0) seed = std::random_device()() % 1000000 + 1;
  const std::string root = absl::GetFlag(FLAGS_state_root);
  if (absl::Status s = ddlm::RemoveTree(root); !s.ok()) {
    std::fprintf(stderr, "fault_benchmark: %s\n", s.ToString().c_str());
    return 1;
  }
  if (::mkdir(root.c_str(), 0755) != 0) {
    std::fprintf(stderr, "fault_benchmark: cannot create %s: %s\n", root.c_str(), std::strerror(errno));
    return 1;
  }

  int runs = 0;
  auto next_dir = [&](const char* kind) { return absl::StrCat(root, "/", kind, "-", runs++); };
  std::vector<TrialResult> baselines;
  auto baseline = [&]() -> bool {
    ChaosOptions straight = ChaosOptions::Uninterrupted(next_dir("uninterrupted"));
    straight.heartbeat_timeout_ms = absl::GetFlag(FLAGS_heartbeat_timeout_ms);
    absl::StatusOr<TrialResult> r = RunTrial(straight);
    if (!r.ok() || r->state != ddlm::SUCCEEDED) {
      std::fprintf(stderr, "fault_benchmark: the uninterrupted run failed: %s\n",
                   r.ok() ? r->message.c_str() : r.status().ToString().c_str());
      return false;
    }
    std::string why;
    if (!baselines.empty() && !ddlm::testing::SameOutcome(*r, baselines.front(), &why)) {
      std::fprintf(stderr, "fault_benchmark: two uninterrupted runs differ (%s)\n", why.c_str());
      return false;
    }
    std::printf("uninterrupted run: %.1f s\n", r->seconds);
    std::fflush(stdout);
    baselines.push_back(*std::move(r));
    return true;
  };

  if (!baseline()) return 1;
  int finished = 0, identical = 0, worker_kills = 0, coordinator_kills = 0, restarts = 0;
  std::vector<double> trial_seconds;
  for (int t = 0; t < trials; ++t, ++seed) {
    ChaosOptions o;
    o.seed = seed;
    o.state_dir = next_dir("chaos");
    o.worker_kills = absl::GetFlag(FLAGS_worker_kills);
    o.coordinator_kills = absl::GetFlag(FLAGS_coordinator_kills);
    o.heartbeat_timeout_ms = absl::GetFlag(FLAGS_heartbeat_timeout_ms);
    absl::StatusOr<TrialResult> r = RunTrial(o);
    if (!r.ok()) {
      std::printf("trial %2d seed %llu: could not run: %s\n", t + 1, static_cast<unsigned long long>(seed),
                  r.status().ToString().c_str());
    } else {
      std::string why;
      const bool same = ddlm::testing::SameOutcome(*r, baselines.front(), &why);
      finished += r->state == ddlm::SUCCEEDED;
      identical += same;
      worker_kills += r->worker_kills;
      coordinator_kills += r->coordinator_kills;
      restarts += r->restarts;
      trial_seconds.push_back(r->seconds);
      std::printf("trial %2d seed %llu: %s, %d restart(s), %.1f s, %s\n  %s\n", t + 1,
                  static_cast<unsigned long long>(seed), ddlm::JobState_Name(r->state).c_str(), r->restarts, r->seconds,
                  same ? "bit-identical" : ("DIFFERS: " + why).c_str(), absl::StrJoin(r->actions, "\n  ").c_str());
    }
    std::fflush(stdout);
    if ((t + 1) % every == 0 || t + 1 == trials) {
      if (!baseline()) return 1;
    }
  }

  std::vector<double> straight;
  for (const TrialResult& b : baselines) straight.push_back(b.seconds);
  const Spread base = Of(straight);
  std::vector<double> extra;
  for (double s : trial_seconds) extra.push_back(s - base.median);
  std::printf(
      "\n| trials | worker kills | coordinator kills | restarts | finished | bit-identical |"
      " uninterrupted s | chaos trial s | extra s per trial |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  std::printf("| %d | %d | %d | %d | %d of %d | %d of %d | %s (%zu runs) | %s | %s |\n", trials, worker_kills,
              coordinator_kills, restarts, finished, trials, identical, trials, Show(base).c_str(), straight.size(),
              Show(Of(trial_seconds)).c_str(), Show(Of(extra)).c_str());
  return identical == trials ? 0 : 1;
}
