#include "tests/chaos/chaos_trial.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
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

absl::StatusOr<TrialResult> RunTrial(const ChaosOptions& options) {
  const absl::Time deadline = absl::Now() + options.timeout;
  if (::mkdir(options.state_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create ", options.state_dir, ": ", std::strerror(errno)));
  }
  // Quick failure detection, so that a trial takes seconds per kill.
  Cluster cluster(options.state_dir, {"--heartbeat_interval_ms=200", "--heartbeat_timeout_ms=1500"});
  if (!cluster.Start()) {
    return absl::InternalError("the coordinator did not start: " + cluster.coordinator().output());
  }
  TrialResult result;
  // Live workers, by index in cluster.workers(); worker i is named "w<i>".
  std::vector<size_t> live;
  auto add_worker = [&]() -> absl::Status {
    const size_t index = cluster.workers().size();
    if (!cluster.AddWorker(absl::StrCat("w", index), {"--collective_timeout_s=30"})) {
      return absl::InternalError(
          absl::StrCat("worker w", index, " did not register: ", cluster.workers().back()->output()));
    }
    live.push_back(index);
    return absl::OkStatus();
  };
  for (int i = 0; i < 2; ++i) {
    if (absl::Status s = add_worker(); !s.ok()) return s;
  }
  absl::StatusOr<Job> job = cluster.Submit(ChaosJob());
  if (!job.ok()) return job.status();
  const absl::Time start = absl::Now();

  std::mt19937_64 rng(options.seed);
  std::vector<char> plan(options.worker_kills, 'w');
  plan.insert(plan.end(), options.coordinator_kills, 'c');
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
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("trial with seed ", options.seed, " took longer than ",
                                                      absl::FormatDuration(options.timeout), Outputs(cluster)));
    }
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    WatchJobRequest request;
    request.set_job_id(job->id());
    request.set_after_sequence(after);
    std::unique_ptr<grpc::ClientReader<JobEvent>> reader = cluster.stub().WatchJob(&context, request);
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
        const size_t victim = std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng);
        const size_t index = live[victim];
        cluster.workers()[index]->Signal(SIGKILL);
        cluster.workers()[index]->Wait();
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(victim));
        result.actions.push_back(absl::StrCat("SIGKILL worker w", index, when));
        ++result.worker_kills;
        if (absl::Status s = add_worker(); !s.ok()) return s;
        result.actions.push_back(absl::StrCat("started worker w", live.back()));
      } else {
        if (!cluster.CrashAndRestartCoordinator()) {
          return absl::InternalError("the coordinator did not restart: " + cluster.coordinator().output());
        }
        result.actions.push_back(absl::StrCat("SIGKILL the coordinator", when, "; restarted it"));
        ++result.coordinator_kills;
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
      return absl::Status(status.code(),
                          absl::StrCat("following ", job->id(), ": ", status.message(), Outputs(cluster)));
    }
  }
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);

  // The outcome, from the job's whole record.
  absl::StatusOr<Job> final_job = cluster.Get(job->id());
  if (!final_job.ok()) return final_job.status();
  result.state = final_job->state();
  result.message = final_job->message();
  result.restarts = final_job->restarts();
  for (const JobEvent& e : cluster.Watch(job->id(), nullptr, 0, deadline - absl::Now())) {
    if (e.has_epoch()) result.val_loss[e.epoch().epoch()] = e.epoch().val_loss();
    if (e.has_test()) result.test_loss = e.test().test_loss();
  }
  return result;
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
