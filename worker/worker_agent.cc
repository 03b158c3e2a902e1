#include "worker/worker_agent.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <utility>

namespace ddlm {

uint64_t RandomIncarnation() {
  std::random_device device;
  std::mt19937_64 rng((static_cast<uint64_t>(device()) << 32) ^ device() ^ static_cast<uint64_t>(::getpid()));
  uint64_t id = 0;
  while (id == 0) id = rng();
  return id;
}

bool IsRefusal(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kFailedPrecondition ||
         code == absl::StatusCode::kPermissionDenied || code == absl::StatusCode::kUnauthenticated ||
         code == absl::StatusCode::kUnimplemented;
}

WorkerAgent::WorkerAgent(CoordinatorClient* client, Clock* clock, WorkerAgentOptions options,
                         AttemptRunnerFactory runners)
    : client_(client), clock_(clock), options_(std::move(options)), runners_(std::move(runners)) {
  ref_.set_worker_id(options_.worker_id);
}

WorkerAgent::~WorkerAgent() { StopRunner("the agent is destroyed"); }

absl::Status WorkerAgent::Run() {
  absl::Duration backoff = options_.initial_backoff;
  while (!shutdown_.HasBeenNotified()) {
    ref_.set_incarnation(options_.new_incarnation());
    RegisterRequest request;
    *request.mutable_worker() = ref_;
    request.set_host(options_.host);
    request.set_device(options_.device);
    absl::StatusOr<RegisterResponse> registered = client_->Register(request);
    if (!registered.ok()) {
      if (IsRefusal(registered.status().code())) return registered.status();
      LOG(WARNING) << "coordinator unreachable (" << registered.status() << "); retrying";
      shutdown_.WaitForNotificationWithTimeout(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    backoff = options_.initial_backoff;
    if (options_.on_registered) options_.on_registered(ref_);
    ServeIncarnation(absl::Milliseconds(registered->heartbeat_interval_ms()),
                     absl::Milliseconds(registered->heartbeat_timeout_ms()));
  }
  StopRunner("the worker is shutting down");
  // Leave the pool at once rather than after the heartbeat timeout, so no job is
  // assigned to a worker that is gone.
  if (absl::Status s = client_->Deregister(ref_); !s.ok()) LOG(WARNING) << "deregister: " << s;
  return absl::OkStatus();
}

void WorkerAgent::Shutdown() {
  if (!shutdown_.HasBeenNotified()) shutdown_.Notify();
  absl::MutexLock lock(&mu_);
  if (stream_ != nullptr) stream_->Cancel();
  if (runner_ != nullptr) runner_->RequestStop();
}

void WorkerAgent::ServeIncarnation(absl::Duration heartbeat_interval, absl::Duration heartbeat_timeout) {
  absl::Notification done;
  std::unique_ptr<CommandStream> stream = client_->StreamCommands(ref_);
  {
    absl::MutexLock lock(&mu_);
    stream_ = stream.get();
    live_incarnation_ = ref_.incarnation();
  }
  if (shutdown_.HasBeenNotified()) stream->Cancel();
  std::thread heartbeat([&, ref = ref_] {
    absl::Time answered = clock_->Now();
    while (!done.WaitForNotificationWithTimeout(heartbeat_interval)) {
      absl::Status s = client_->Heartbeat(ref);
      if (s.code() == absl::StatusCode::kAborted || s.code() == absl::StatusCode::kNotFound) {
        LOG(WARNING) << "heartbeat refused (" << s << "); registering again";
        stream->Cancel();
        return;
      }
      if (s.ok()) {
        answered = clock_->Now();
      } else if (clock_->Now() - answered > heartbeat_timeout) {
        LOG(WARNING) << "no heartbeat answered for " << clock_->Now() - answered << " (" << s
                     << "); abandoning this incarnation and registering again";
        stream->Cancel();
        return;
      }
    }
  });
  WorkerCommand command;
  while (stream->Next(&command)) {
    if (command.has_assign()) {
      StartRunner(command.assign());
    } else if (command.has_cancel()) {
      Cancel(command.cancel());
    }
  }
  absl::Status status = stream->Finish();
  done.Notify();
  heartbeat.join();
  {
    absl::MutexLock lock(&mu_);
    stream_ = nullptr;
    live_incarnation_ = 0;  // Ends ReportFinish's retries for it.
  }
  if (!shutdown_.HasBeenNotified()) {
    LOG(WARNING) << "command stream ended: " << status;
    // This incarnation is over: whatever it ran is void.
    StopRunner("the worker lost its registration");
    shutdown_.WaitForNotificationWithTimeout(options_.reregister_pause);
  }
}

void WorkerAgent::Cancel(const AttemptRef& attempt) {
  {
    absl::MutexLock lock(&mu_);
    if (runner_ != nullptr && runner_->attempt().job_id() == attempt.job_id() &&
        runner_->attempt().attempt() == attempt.attempt()) {
      LOG(INFO) << "cancelling " << attempt.job_id() << " attempt " << attempt.attempt();
      runner_->RequestStop();
      return;
    }
  }
  // Not (or no longer) running it, e.g. its end was never delivered: say so again, so
  // that the coordinator can end the attempt.
  FinishAssignmentRequest finish;
  *finish.mutable_worker() = ref_;
  *finish.mutable_attempt() = attempt;
  finish.set_cancelled(true);
  finish.set_error("cancelled");
  ReportFinish(finish);
}

void WorkerAgent::StartRunner(const Assignment& assignment) {
  StopRunner("a new assignment arrived");  // Normally already finished.
  std::shared_ptr<AttemptRunner> runner = runners_(assignment, ref_);
  absl::MutexLock lock(&mu_);
  runner_ = runner;
  runner_thread_ = std::thread([this, runner, ref = ref_] {
    absl::Status status = runner->Run();
    FinishAssignmentRequest finish;
    *finish.mutable_worker() = ref;
    *finish.mutable_attempt() = runner->attempt();
    finish.set_ok(status.ok());
    finish.set_cancelled(status.code() == absl::StatusCode::kCancelled && !shutdown_.HasBeenNotified());
    finish.set_error(shutdown_.HasBeenNotified() && !status.ok() ? "the worker was shut down"
                                                                 : std::string(status.message()));
    if (status.ok()) {
      LOG(INFO) << "finished " << runner->attempt().job_id();
    } else {
      LOG(WARNING) << "assignment " << runner->attempt().job_id() << " ended: " << status;
    }
    ReportFinish(finish);
    absl::MutexLock lock(&mu_);
    if (runner_ == runner) runner_ = nullptr;
  });
}

void WorkerAgent::ReportFinish(const FinishAssignmentRequest& finish) {
  absl::Duration backoff = options_.finish_backoff;
  for (;;) {
    absl::Status s = client_->FinishAssignment(finish);
    if (s.ok() || s.code() == absl::StatusCode::kNotFound || s.code() == absl::StatusCode::kAborted ||
        IsRefusal(s.code())) {
      if (!s.ok()) LOG(WARNING) << "end of " << finish.attempt().job_id() << " not accepted: " << s;
      return;
    }
    LOG(WARNING) << "could not report the end of " << finish.attempt().job_id() << " (" << s << "); retrying";
    const uint64_t incarnation = finish.worker().incarnation();
    auto over = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return live_incarnation_ != incarnation || shutdown_.HasBeenNotified();
    };
    absl::MutexLock lock(&mu_);
    // Waits for the network, waking at once if the incarnation ends.
    if (mu_.AwaitWithTimeout(absl::Condition(&over), backoff)) {
      LOG(WARNING) << "giving up reporting the end of " << finish.attempt().job_id() << ": incarnation " << incarnation
                   << " is over";
      return;
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void WorkerAgent::StopRunner(const char* why) {
  std::thread thread;
  {
    absl::MutexLock lock(&mu_);
    if (runner_ != nullptr) {
      LOG(INFO) << "stopping the current assignment: " << why;
      runner_->RequestStop();
    }
    thread = std::move(runner_thread_);
  }
  if (thread.joinable()) thread.join();
}

}  // namespace ddlm
