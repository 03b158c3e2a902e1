#ifndef DDLM_TESTS_CHAOS_CHAOS_TRIAL_H_
#define DDLM_TESTS_CHAOS_CHAOS_TRIAL_H_

// One chaos trial: a real coordinator and two real workers on loopback run a small job
// with step checkpoints while a driver SIGKILLs workers (starting replacements) and the
// coordinator (restarting it on the same port and state directory) at random points,
// chosen by a seeded generator. The job must restart on its own each time and end as
// an uninterrupted run of the same job would: RunTrial with no kills is that run.
//
// Random kills land after a random number (1 to 6) of training-metrics events of the
// current attempt, so at a random step of it, mid-epoch or in the epoch-end evaluation
// and checkpoint that follow the last metrics of an epoch. Phase kills (PhaseKill) land
// exactly where a worker's failpoint stopped it (common/base/failpoint.h): in the
// rendezvous, a shard or checkpoint download, an upload, the evaluation barrier, the
// test pass or a training step. Every wait has a deadline.
//
// Used by chaos_test (one trial against an uninterrupted run) and fault_benchmark (20
// trials, a table). Threading: one thread per trial.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/config.pb.h"
#include "proto/job.pb.h"

namespace ddlm::testing {

// A kill at a chosen phase of an attempt. Worker w<worker> runs with DDLM_FAILPOINTS
// asking it to stop the `hit`-th time it reaches `failpoint`; once it has stopped
// there, the driver SIGKILLs that worker (and starts a replacement, the next w<i>), or,
// with kill_coordinator, the coordinator (restarting it on its port and state
// directory, then letting the stopped worker go on, to find its calls cut).
struct PhaseKill {
  std::string failpoint;  // One of common/base/failpoint.h's names.
  int hit = 1;
  // w0 and w1 are the first two workers; each replacement takes the next number.
  size_t worker = 0;
  bool kill_coordinator = false;

  std::string Describe() const;
};

// The phase kills every run of chaos_test makes, each in a trial of its own: every
// phase at least once, workers and the coordinator as victims.
std::vector<std::vector<PhaseKill>> EveryPhase();

// The heartbeat timeout chaos_test's coordinators run with: well beyond the 200 ms
// interval, so that a worker starved of CPU on a loaded machine is not declared dead
// (an extra restart), yet short enough to notice a stopped or killed one in seconds.
inline constexpr int kHeartbeatTimeoutMs = 5000;

struct ChaosOptions {
  // The same job, killed nowhere: the run a trial must end like.
  static ChaosOptions Uninterrupted(std::string state_dir) {
    ChaosOptions o;
    o.state_dir = std::move(state_dir);
    o.worker_kills = 0;
    o.coordinator_kills = 0;
    return o;
  }

  // Random kills (when phase_kills is empty).
  uint64_t seed = 1;
  int worker_kills = 3;
  int coordinator_kills = 1;
  // Phase kills, in order, instead of random ones.
  std::vector<PhaseKill> phase_kills;
  // The coordinator's --heartbeat_timeout_ms (its --heartbeat_interval_ms is 200).
  int heartbeat_timeout_ms = kHeartbeatTimeoutMs;
  // A fresh directory per trial (created if missing; its parent must exist).
  std::string state_dir;
  // The whole trial, from the coordinator's start to the job's end.
  absl::Duration timeout = absl::Minutes(4);
};

struct TrialResult {
  JobState state = JOB_STATE_UNSPECIFIED;
  std::string message;
  // Per epoch, the validation loss of its last result (an epoch redone after a restart
  // reports again), and the test loss.
  std::map<int32_t, double> val_loss;
  std::optional<double> test_loss;
  int worker_kills = 0;
  int coordinator_kills = 0;
  int32_t restarts = 0;
  double seconds = 0;
  // What the driver did, in order ("kill worker w1 after 3 metrics events of attempt 2").
  std::vector<std::string> actions;
};

// The job every trial runs: 2 workers, 3 epochs of 40 steps, a checkpoint every 10
// steps, restarts enough for every planned kill.
JobSpec ChaosJob();

// Runs the job once, with the kills `options` asks for (none: the uninterrupted run).
// An error means the trial could not be run (a binary did not start, a deadline
// passed); a job that ended badly is a result with that state and message.
absl::StatusOr<TrialResult> RunTrial(const ChaosOptions& options);

// Whether `a` ended exactly as `b`: SUCCEEDED, the same epochs with bit-identical
// validation losses, and a bit-identical test loss. Otherwise `why` says what differs.
bool SameOutcome(const TrialResult& a, const TrialResult& b, std::string* why);

}  // namespace ddlm::testing

#endif  // DDLM_TESTS_CHAOS_CHAOS_TRIAL_H_
