#include "tests/chaos/chaos_trial.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/base/failpoint.h"
#include "common/base/status_macros.h"
#include "common/transport/grpc_status.h"
#include "tests/cluster.h"

namespace ddlm::testing {
namespace {

bool IsFinal(JobState s) { return s == SUCCEEDED || s == FAILED || s == CANCELLED; }

std::string Tail(const std::string& output, size_t lines) {
  size_t at = output.size();
  for (size_t n = 0; n <= lines && at > 0; ++n) {
    at = output.rfind('\n', at - 1);
    if (at == std::string::npos) return output;
  }
  return output.substr(at + 1);
}

// Every process's last lines, for a trial that went wrong.
std::string Outputs(Cluster& cluster) {
  std::string out = absl::StrCat("\n--- coordinator:\n", Tail(cluster.coordinator().output(), 30));
  for (size_t i = 0; i < cluster.workers().size(); ++i) {
    std::optional<int> exited = cluster.workers()[i]->TryWait();
    absl::StrAppend(&out, "\n--- worker w", i, exited ? absl::StrCat(" (exited: ", *exited, ")") : std::string(), ":\n",
                    Tail(cluster.workers()[i]->output(), 30));
  }
  return out;
}

}  // namespace

JobSpec ChaosJob() {
  JobSpec spec = SmallJob(/*workers=*/2, /*epochs=*/3);  // 40 steps per epoch.
  spec.set_name("chaos");
  spec.mutable_schedule()->set_log_interval(5);
  spec.mutable_checkpoint()->set_every_n_steps(10);
  spec.mutable_checkpoint()->set_keep_last(2);
  spec.set_max_restarts(10);
  return spec;
}

std::string PhaseKill::Describe() const {
  return absl::StrCat(kill_coordinator ? "SIGKILL the coordinator" : absl::StrCat("SIGKILL worker w", worker),
                      " when w", worker, " stopped at ", failpoint, " (hit ", hit, ")");
}

std::vector<std::vector<PhaseKill>> EveryPhase() {
  // ChaosJob: two workers, 3 epochs of 40 steps, a checkpoint every 10 steps, uploaded
  // by rank 0 (w0 in the first attempt: ranks follow registration order).
  return {
      // w1 stops before joining the collective: w0 waits in the rendezvous for it.
      {{std::string(kFailpointRendezvous), 1, /*worker=*/1, false}},
      // A shard half-received when the coordinator dies.
      {{std::string(kFailpointShardDownload), 1, /*worker=*/0, true}},
      // w1 dies at step 15 (a checkpoint of step 10 is kept); its replacement w2 joins
      // the next attempt, which resumes from that checkpoint, and dies downloading it.
      {{std::string(kFailpointTrainStep), 15, /*worker=*/1, false},
       {std::string(kFailpointCheckpointDownload), 1, /*worker=*/2, false}},
      // The step-20 checkpoint's first chunk sent when the coordinator dies.
      {{std::string(kFailpointCheckpointUpload), 2, /*worker=*/0, true}},
      // w1 has its epoch-1 validation loss and is about to report it; w0 is at the barrier.
      {{std::string(kFailpointEvaluationBarrier), 1, /*worker=*/1, false}},
      // The end-of-job test pass.
      {{std::string(kFailpointTestPass), 1, /*worker=*/0, false}},
      // Mid-epoch: step 55 is epoch 2's 15th.
      {{std::string(kFailpointTrainStep), 55, /*worker=*/0, true}},
  };
}

namespace {

// One trial's processes and what the driver did.
class Trial {
 public:
  Trial(const ChaosOptions& options, Cluster* cluster)
      : options_(options), cluster_(*cluster), deadline_(absl::Now() + options.timeout) {}

  TrialResult& result() { return result_; }

  // Starts the next worker, w<number of workers started so far>, armed with the phase
  // kills that name it.
  absl::Status AddWorker() {
    const size_t index = cluster_.workers().size();
    std::vector<std::string> points;
    for (const PhaseKill& k : options_.phase_kills) {
      if (k.worker == index) points.push_back(absl::StrCat(k.failpoint, ":", k.hit));
    }
    std::vector<std::string> env;
    if (!points.empty()) env.push_back("DDLM_FAILPOINTS=" + absl::StrJoin(points, ","));
    if (!cluster_.AddWorker(absl::StrCat("w", index), {"--collective_timeout_s=30"}, env)) {
      return absl::InternalError(
          absl::StrCat("worker w", index, " did not register: ", cluster_.workers().back()->output()));
    }
    live_.push_back(index);
    return absl::OkStatus();
  }

  // SIGKILLs worker `index` and starts a replacement.
  absl::Status KillWorker(size_t index, const std::string& when) {
    cluster_.workers()[index]->Signal(SIGKILL);
    cluster_.workers()[index]->Wait();
    live_.erase(std::find(live_.begin(), live_.end(), index));
    result_.actions.push_back(absl::StrCat("SIGKILL worker w", index, when));
    ++result_.worker_kills;
    DDLM_RETURN_IF_ERROR(AddWorker());
    result_.actions.push_back(absl::StrCat("started worker w", live_.back()));
    return absl::OkStatus();
  }

  absl::Status KillCoordinator(const std::string& when) {
    if (!cluster_.CrashAndRestartCoordinator()) {
      return absl::InternalError("the coordinator did not restart: " + cluster_.coordinator().output());
    }
    result_.actions.push_back(absl::StrCat("SIGKILL the coordinator", when, "; restarted it"));
    ++result_.coordinator_kills;
    return absl::OkStatus();
  }

  // The random kills: after a random number of metrics events of the current attempt.
  absl::Status KillAtRandom(const std::string& job_id);
  // The phase kills, in order, each once its worker stopped at its failpoint.
  absl::Status KillAtPhases(const std::string& job_id);
  // Follows the job to its end and fills in the result from its whole record.
  absl::Status Finish(const std::string& job_id, bool follow);

  std::string Outputs() { return ::ddlm::testing::Outputs(cluster_); }

 private:
  const ChaosOptions& options_;
  Cluster& cluster_;
  const absl::Time deadline_;
  TrialResult result_;
  std::vector<size_t> live_;  // Live workers, by index in cluster.workers().
};

absl::Status Trial::KillAtRandom(const std::string& job_id) {
  std::mt19937_64 rng(options_.seed);
  std::vector<char> plan(options_.worker_kills, 'w');
  plan.insert(plan.end(), options_.coordinator_kills, 'c');
  std::shuffle(plan.begin(), plan.end(), rng);
  auto draw = [&] { return std::uniform_int_distribution<int>(1, 6)(rng); };
  size_t next_kill = 0;
  int wait_for = draw();  // Metrics events of the current attempt before the next kill.

  int32_t attempt = 0;      // Of the latest RUNNING event seen.
  int32_t min_attempt = 1;  // Counting starts with an attempt at least this new.
  bool counting = false;
  int progress = 0;
  int64_t after = 0;
  bool finished = false;
  while (!finished) {
    if (absl::Now() > deadline_) {
      return absl::DeadlineExceededError(absl::StrCat("trial with seed ", options_.seed, " took longer than ",
                                                      absl::FormatDuration(options_.timeout), Outputs()));
    }
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline_));
    WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_after_sequence(after);
    std::unique_ptr<grpc::ClientReader<JobEvent>> reader = cluster_.stub().WatchJob(&context, request);
    JobEvent event;
    bool reopen = false;
    while (!reopen && reader->Read(&event)) {
      after = event.sequence();
      if (event.has_state()) {
        const JobState state = event.state().state();
        if (state == RUNNING) {
          attempt = event.state().attempt();
          if (attempt >= min_attempt) {
            counting = true;
            progress = 0;
          }
        }
        finished = IsFinal(state);
      } else if (event.has_training() && counting) {
        ++progress;
      }
      if (!counting || next_kill >= plan.size() || progress < wait_for) continue;
      // Kill, at this point of attempt `attempt`.
      const char kind = plan[next_kill++];
      const std::string when = absl::StrCat(" after ", progress, " metrics event(s) of attempt ", attempt, " (epoch ",
                                            event.has_training() ? event.training().epoch() : 0, ", batch ",
                                            event.has_training() ? event.training().batch() : 0, ")");
      if (kind == 'w') {
        const size_t victim = std::uniform_int_distribution<size_t>(0, live_.size() - 1)(rng);
        DDLM_RETURN_IF_ERROR(KillWorker(live_[victim], when));
      } else {
        DDLM_RETURN_IF_ERROR(KillCoordinator(when));
        // Its events up to the crash are replayed from disk (the last few may not have
        // been written): follow them again from the start.
        reopen = true;
        after = 0;
      }
      min_attempt = attempt + 1;
      counting = false;
      wait_for = draw();
    }
    if (reopen) {
      context.TryCancel();
      reader->Finish();
      continue;
    }
    const absl::Status status = FromGrpcStatus(reader->Finish());
    if (!finished && !status.ok()) {
      return absl::Status(status.code(), absl::StrCat("following ", job_id, ": ", status.message(), Outputs()));
    }
  }
  return absl::OkStatus();
}

absl::Status Trial::KillAtPhases(const std::string& job_id) {
  for (const PhaseKill& kill : options_.phase_kills) {
    if (kill.worker >= cluster_.workers().size()) {
      return absl::InvalidArgumentError(absl::StrCat("phase kill \"", kill.Describe(), "\": worker w", kill.worker,
                                                     " was not started (", cluster_.workers().size(), " so far)"));
    }
    Subprocess& worker = *cluster_.workers()[kill.worker];
    const std::string line = absl::StrCat("ddlm failpoint ", kill.failpoint, " hit ", kill.hit, " ");
    const auto wait = std::max(absl::ZeroDuration(), deadline_ - absl::Now());
    if (!worker.WaitForLine(line, nullptr, absl::ToChronoMilliseconds(wait))) {
      return absl::DeadlineExceededError(absl::StrCat("w", kill.worker, " never reached failpoint ", kill.failpoint,
                                                      " (hit ", kill.hit, ")", Outputs()));
    }
    // It writes the line, then stops itself; wait for the stop (or an exit), leaving
    // the child to be reaped by its Subprocess. Bounded: past the trial's deadline a
    // watchdog kills the worker, which ends the wait.
    siginfo_t info{};
    {
      std::mutex mu;
      std::condition_variable cv;
      bool waited = false;
      std::thread watchdog([&] {
        std::unique_lock<std::mutex> lock(mu);
        if (!cv.wait_until(lock, absl::ToChronoTime(deadline_), [&] { return waited; })) worker.Signal(SIGKILL);
      });
      int rc;
      do {
        rc = ::waitid(P_PID, static_cast<id_t>(worker.pid()), &info, WSTOPPED | WEXITED | WNOWAIT);
      } while (rc != 0 && errno == EINTR);
      const int wait_errno = errno;
      {
        std::lock_guard<std::mutex> lock(mu);
        waited = true;
      }
      cv.notify_one();
      watchdog.join();
      if (rc != 0) {
        return absl::InternalError(absl::StrCat("waitid for w", kill.worker, ": ", std::strerror(wait_errno)));
      }
    }
    if (info.si_code != CLD_STOPPED) {
      return absl::InternalError(
          absl::StrCat("w", kill.worker, " ended instead of stopping at ", kill.failpoint, Outputs()));
    }
    const std::string when = absl::StrCat(" stopped at ", kill.failpoint, " (hit ", kill.hit, ")");
    if (kill.kill_coordinator) {
      // The coordinator tells workers their assignment before the attempt's RUNNING is
      // on disk; killed in between (a worker early in its shard download can be there),
      // it comes back with the job QUEUED, and starts it again without counting a
      // restart. Kill it once the attempt is durably RUNNING (a watcher hears RUNNING
      // only then), so that every run kills the same state.
      if (absl::StatusOr<Job> now = cluster_.Get(job_id); now.ok() && now->state() == RUNNING) {
        const int32_t attempt = now->attempt();
        cluster_.Watch(
            job_id,
            [&](const JobEvent& e) {
              return e.has_state() && e.state().state() == RUNNING && e.state().attempt() == attempt;
            },
            0, std::max(absl::ZeroDuration(), deadline_ - absl::Now()));
      }
      DDLM_RETURN_IF_ERROR(KillCoordinator(absl::StrCat(" while w", kill.worker, when)));
      worker.Signal(SIGCONT);
      result_.actions.push_back(absl::StrCat("continued w", kill.worker));
    } else {
      DDLM_RETURN_IF_ERROR(KillWorker(kill.worker, when));
    }
  }
  return absl::OkStatus();
}

absl::Status Trial::Finish(const std::string& job_id, bool follow) {
  if (follow) {
    const std::vector<JobEvent> events = cluster_.Watch(job_id, nullptr, 0, deadline_ - absl::Now());
    if (!IsFinal(FinalState(events))) {
      return absl::DeadlineExceededError(absl::StrCat(job_id, " did not end in time", Outputs()));
    }
  }
  absl::StatusOr<Job> final_job = cluster_.Get(job_id);
  if (!final_job.ok()) return final_job.status();
  result_.state = final_job->state();
  result_.message = final_job->message();
  result_.restarts = final_job->restarts();
  for (const JobEvent& e : cluster_.Watch(job_id, nullptr, 0, deadline_ - absl::Now())) {
    if (e.has_epoch()) result_.val_loss[e.epoch().epoch()] = e.epoch().val_loss();
    if (e.has_test()) result_.test_loss = e.test().test_loss();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrialResult> RunTrial(const ChaosOptions& options) {
  if (::mkdir(options.state_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create ", options.state_dir, ": ", std::strerror(errno)));
  }
  // Quick failure detection, so that a trial takes seconds per kill.
  Cluster cluster(options.state_dir, {"--heartbeat_interval_ms=200",
                                      absl::StrCat("--heartbeat_timeout_ms=", options.heartbeat_timeout_ms)});
  if (!cluster.Start()) {
    return absl::InternalError("the coordinator did not start: " + cluster.coordinator().output());
  }
  Trial trial(options, &cluster);
  for (int i = 0; i < 2; ++i) DDLM_RETURN_IF_ERROR(trial.AddWorker());
  absl::StatusOr<Job> job = cluster.Submit(ChaosJob());
  if (!job.ok()) return job.status();
  const absl::Time start = absl::Now();
  if (options.phase_kills.empty()) {
    DDLM_RETURN_IF_ERROR(trial.KillAtRandom(job->id()));
  } else {
    DDLM_RETURN_IF_ERROR(trial.KillAtPhases(job->id()));
  }
  DDLM_RETURN_IF_ERROR(trial.Finish(job->id(), /*follow=*/!options.phase_kills.empty()));
  trial.result().seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return std::move(trial.result());
}

bool SameOutcome(const TrialResult& a, const TrialResult& b, std::string* why) {
  auto fail = [&](std::string s) {
    if (why != nullptr) *why = std::move(s);
    return false;
  };
  if (a.state != SUCCEEDED || b.state != SUCCEEDED) {
    return fail(absl::StrCat("states ", JobState_Name(a.state), " (", a.message, ") and ", JobState_Name(b.state), " (",
                             b.message, ")"));
  }
  if (a.val_loss.size() != b.val_loss.size()) {
    return fail(absl::StrCat(a.val_loss.size(), " epochs against ", b.val_loss.size()));
  }
  for (const auto& [epoch, loss] : a.val_loss) {
    auto it = b.val_loss.find(epoch);
    if (it == b.val_loss.end()) return fail(absl::StrCat("no epoch ", epoch, " in the other run"));
    if (it->second != loss) {
      return fail(absl::StrFormat("epoch %d validation loss %.17g against %.17g", epoch, loss, it->second));
    }
  }
  if (a.test_loss != b.test_loss) {
    return fail(absl::StrFormat("test loss %.17g against %.17g", a.test_loss.value_or(-1), b.test_loss.value_or(-1)));
  }
  return true;
}

}  // namespace ddlm::testing
