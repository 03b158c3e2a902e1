// ddlm_worker: one data-parallel rank per process (one per GPU or CPU slot). It
// registers with the coordinator under a fresh incarnation, heartbeats, and runs the
// job attempts the coordinator assigns, one at a time.
//
//   ddlm_worker --coordinator HOST:PORT [--device cpu] [--worker_id ID] [--host ADDR]
//
// Threads: the main thread reads the command stream; one thread heartbeats; one runs
// the current assignment (JobRunner); one waits for SIGINT/SIGTERM. If the coordinator
// declares this incarnation dead (ABORTED), or goes away (the stream breaks, or no
// heartbeat is answered for the heartbeat timeout), the worker abandons its assignment
// and registers again with a new incarnation, retrying with backoff until the
// coordinator (restarted on the same address) answers.

#include <glog/logging.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/device.h"
#include "common/shutdown_signal.h"
#include "common/transport_flags.h"
#include "worker/collectives/collective_factory.h"
#include "worker/coordinator_client.h"
#include "worker/job_runner.h"
#include "worker/local_address.h"
#include "worker/rpc/grpc_coordinator_client.h"

ABSL_FLAG(std::string, coordinator, "", "The coordinator's host:port (required).");
ABSL_FLAG(std::string, device, "cpu", "cpu, or cuda:N (a --config=cuda build; one worker per GPU).");
ABSL_FLAG(std::string, collective, "auto",
          "Gradient all-reduce: auto (Gloo on cpu, NCCL on cuda:N), gloo (through host memory, "
          "e.g. several workers sharing one GPU) or nccl.");
ABSL_FLAG(std::string, worker_id, "", "Stable name of this worker (default: hostname-device).");
ABSL_FLAG(std::string, host, "",
          "Address other workers reach this one on (default: the local address that routes "
          "to the coordinator).");
ABSL_FLAG(int32_t, collective_timeout_s, 300, "Timeout of rendezvous and every collective.");

namespace {

constexpr char kUsage[] =
    "ddlm_worker --coordinator HOST:PORT [--device cpu|cuda:N] [--collective auto|gloo|nccl]";

// Codes that say the registration itself is wrong (a flag, a credential), so that
// trying again cannot help. Anything else (UNAVAILABLE, a call cut off by a coordinator
// that died mid-call: UNKNOWN, INTERNAL, CANCELLED...) is retried.
bool IsRefusal(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kFailedPrecondition ||
         code == absl::StatusCode::kPermissionDenied || code == absl::StatusCode::kUnauthenticated ||
         code == absl::StatusCode::kUnimplemented;
}

uint64_t NewIncarnation() {
  std::random_device device;
  std::mt19937_64 rng((static_cast<uint64_t>(device()) << 32) ^ device() ^
                      static_cast<uint64_t>(::getpid()));
  uint64_t id = 0;
  while (id == 0) id = rng();
  return id;
}

class Worker {
 public:
  Worker(ddlm::CoordinatorClient* client, std::string id, std::string host, std::string device,
         std::string collective)
      : client_(client),
        host_(std::move(host)),
        device_(std::move(device)),
        collective_(std::move(collective)) {
    ref_.set_worker_id(std::move(id));
  }

  // Runs until Shutdown. Returns the process exit code.
  int Run() {
    absl::Duration backoff = absl::Milliseconds(200);
    while (!shutdown_.HasBeenNotified()) {
      ref_.set_incarnation(NewIncarnation());
      ddlm::RegisterRequest request;
      *request.mutable_worker() = ref_;
      request.set_host(host_);
      request.set_device(device_);
      absl::StatusOr<ddlm::RegisterResponse> registered = client_->Register(request);
      if (!registered.ok()) {
        if (IsRefusal(registered.status().code())) {
          std::fprintf(stderr, "ddlm_worker: %s\n", registered.status().ToString().c_str());
          return 1;
        }
        LOG(WARNING) << "coordinator unreachable (" << registered.status() << "); retrying";
        shutdown_.WaitForNotificationWithTimeout(backoff);
        backoff = std::min(backoff * 2, absl::Seconds(5));
        continue;
      }
      backoff = absl::Milliseconds(200);
      std::printf("ddlm_worker %s registered as incarnation %llu (host %s, device %s)\n",
                  ref_.worker_id().c_str(), static_cast<unsigned long long>(ref_.incarnation()),
                  host_.c_str(), device_.c_str());
      std::fflush(stdout);
      ServeIncarnation(absl::Milliseconds(registered->heartbeat_interval_ms()),
                       absl::Milliseconds(registered->heartbeat_timeout_ms()));
    }
    StopRunner("the worker is shutting down");
    // Leave the pool at once rather than after the heartbeat timeout, so no job is
    // assigned to a worker that is gone.
    if (absl::Status s = client_->Deregister(ref_); !s.ok()) LOG(WARNING) << "deregister: " << s;
    return 0;
  }

  void Shutdown() {
    if (!shutdown_.HasBeenNotified()) shutdown_.Notify();
    absl::MutexLock lock(&mu_);
    if (stream_ != nullptr) stream_->Cancel();
    if (runner_ != nullptr) runner_->RequestStop();
  }

 private:
  // Heartbeats and follows commands until this incarnation ends: the stream closed, a
  // heartbeat was refused, or none was answered for `heartbeat_timeout` (by then the
  // coordinator has declared this incarnation dead, or is itself gone).
  void ServeIncarnation(absl::Duration heartbeat_interval, absl::Duration heartbeat_timeout) {
    absl::Notification done;
    std::unique_ptr<ddlm::CommandStream> stream = client_->StreamCommands(ref_);
    {
      absl::MutexLock lock(&mu_);
      stream_ = stream.get();
      live_incarnation_ = ref_.incarnation();
    }
    if (shutdown_.HasBeenNotified()) stream->Cancel();
    std::thread heartbeat([&, ref = ref_] {
      absl::Time answered = absl::Now();
      while (!done.WaitForNotificationWithTimeout(heartbeat_interval)) {
        absl::Status s = client_->Heartbeat(ref);
        if (s.code() == absl::StatusCode::kAborted || s.code() == absl::StatusCode::kNotFound) {
          LOG(WARNING) << "heartbeat refused (" << s << "); registering again";
          stream->Cancel();
          return;
        }
        if (s.ok()) {
          answered = absl::Now();
        } else if (absl::Now() - answered > heartbeat_timeout) {
          LOG(WARNING) << "no heartbeat answered for " << absl::Now() - answered << " (" << s
                       << "); abandoning this incarnation and registering again";
          stream->Cancel();
          return;
        }
      }
    });
    ddlm::WorkerCommand command;
    while (stream->Next(&command)) {
      if (command.has_assign()) {
        StartRunner(command.assign());
      } else if (command.has_cancel()) {
        bool running = false;
        {
          absl::MutexLock lock(&mu_);
          running = runner_ != nullptr && runner_->attempt().job_id() == command.cancel().job_id() &&
                    runner_->attempt().attempt() == command.cancel().attempt();
          if (running) {
            LOG(INFO) << "cancelling " << command.cancel().job_id() << " attempt "
                      << command.cancel().attempt();
            runner_->RequestStop();
          }
        }
        if (!running) {
          // Not (or no longer) running it, e.g. its end was never delivered: say so again,
          // so that the coordinator can end the attempt.
          ddlm::FinishAssignmentRequest finish;
          *finish.mutable_worker() = ref_;
          *finish.mutable_attempt() = command.cancel();
          finish.set_cancelled(true);
          finish.set_error("cancelled");
          ReportFinish(finish);
        }
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
      shutdown_.WaitForNotificationWithTimeout(absl::Milliseconds(200));
    }
  }

  void StartRunner(const ddlm::Assignment& assignment) {
    StopRunner("a new assignment arrived");  // Normally already finished.
    ddlm::JobRunnerOptions options;
    options.device = device_;
    options.host = host_;
    options.collective_timeout = absl::Seconds(absl::GetFlag(FLAGS_collective_timeout_s));
    auto runner = std::make_shared<ddlm::JobRunner>(
        assignment, ref_, client_, options,
        [device = device_, backend = collective_](const ddlm::CollectiveOptions& o,
                                                  ddlm::KeyValueStore* store) {
          return ddlm::CreateCollective(device, backend, o, store);
        });
    absl::MutexLock lock(&mu_);
    runner_ = runner;
    runner_thread_ = std::thread([this, runner, ref = ref_] {
      absl::Status status = runner->Run();
      ddlm::FinishAssignmentRequest finish;
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

  // The coordinator must learn that an assignment ended, or its job never does: retry
  // while the incarnation that ran it lives (a stale incarnation or unknown job ends
  // the retries, and so does the end of the incarnation: the coordinator has declared
  // it dead, or is gone, and a restarted one knows nothing of its attempts).
  void ReportFinish(const ddlm::FinishAssignmentRequest& finish) {
    absl::Duration backoff = absl::Milliseconds(100);
    for (;;) {
      absl::Status s = client_->FinishAssignment(finish);
      if (s.ok() || s.code() == absl::StatusCode::kNotFound || s.code() == absl::StatusCode::kAborted ||
          IsRefusal(s.code())) {
        if (!s.ok()) LOG(WARNING) << "end of " << finish.attempt().job_id() << " not accepted: " << s;
        return;
      }
      LOG(WARNING) << "could not report the end of " << finish.attempt().job_id() << " (" << s
                   << "); retrying";
      const uint64_t incarnation = finish.worker().incarnation();
      auto over = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return live_incarnation_ != incarnation || shutdown_.HasBeenNotified();
      };
      absl::MutexLock lock(&mu_);
      // Waits for the network (not for a test), waking at once if the incarnation ends.
      if (mu_.AwaitWithTimeout(absl::Condition(&over), backoff)) {
        LOG(WARNING) << "giving up reporting the end of " << finish.attempt().job_id()
                     << ": incarnation " << incarnation << " is over";
        return;
      }
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
  }

  void StopRunner(const char* why) {
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

  ddlm::CoordinatorClient* client_;
  ddlm::WorkerRef ref_;
  const std::string host_;
  const std::string device_;
  const std::string collective_;
  absl::Notification shutdown_;
  absl::Mutex mu_;
  ddlm::CommandStream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t live_incarnation_ ABSL_GUARDED_BY(mu_) = 0;  // 0 between incarnations.
  std::shared_ptr<ddlm::JobRunner> runner_ ABSL_GUARDED_BY(mu_);
  std::thread runner_thread_;  // Touched by the main thread only (under mu_ for moves).
};

}  // namespace

int main(int argc, char** argv) {
  ddlm::ParseFlagsOrExit(argc, argv, "ddlm_worker", kUsage);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  const std::string coordinator = absl::GetFlag(FLAGS_coordinator);
  if (coordinator.empty()) {
    std::fprintf(stderr, "ddlm_worker: --coordinator HOST:PORT is required\n");
    return 2;
  }
  absl::StatusOr<torch::Device> resolved = ddlm::ResolveDevice(absl::GetFlag(FLAGS_device));
  if (!resolved.ok()) {
    std::fprintf(stderr, "ddlm_worker: --device: %s\n", std::string(resolved.status().message()).c_str());
    return 2;
  }
  const std::string device = resolved->str();  // "cpu" or "cuda:N".
  const std::string collective = absl::GetFlag(FLAGS_collective);
  if (collective != "auto" && collective != "gloo" && collective != "nccl") {
    std::fprintf(stderr, "ddlm_worker: --collective must be auto, gloo or nccl, got '%s'\n",
                 collective.c_str());
    return 2;
  }
  if (collective == "nccl" && !resolved->is_cuda()) {
    std::fprintf(stderr, "ddlm_worker: --collective nccl needs --device cuda:N\n");
    return 2;
  }
  LOG(INFO) << "device " << ddlm::DescribeDevice(*resolved) << ", collective " << collective;
  std::string host = absl::GetFlag(FLAGS_host);
  if (host.empty()) {
    absl::StatusOr<std::string> local = ddlm::LocalAddressFor(coordinator);
    if (!local.ok()) {
      std::fprintf(stderr, "ddlm_worker: --coordinator: %s\n", local.status().ToString().c_str());
      return 2;
    }
    host = *local;
  }
  std::string id = absl::GetFlag(FLAGS_worker_id);
  if (id.empty()) {
    char name[256] = {};
    ::gethostname(name, sizeof(name) - 1);
    id = absl::StrCat(name, "-", device, "-", ::getpid());
  }

  // Gloo writes to its peers' sockets with plain writev: a peer that died would raise
  // SIGPIPE and kill this worker with it. Ignored, the write fails with EPIPE, the
  // collective returns an error, and the attempt ends the ordinary way.
  ::signal(SIGPIPE, SIG_IGN);

  if (absl::Status s = ddlm::InstallShutdownSignalHandlers(); !s.ok()) {
    std::fprintf(stderr, "ddlm_worker: %s\n", s.ToString().c_str());
    return 1;
  }

  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ddlm::MakeChannelCredentials(ddlm::ClientTransportFromFlags());
  if (!credentials.ok()) {
    std::fprintf(stderr, "ddlm_worker: %s\n", credentials.status().ToString().c_str());
    return 2;
  }
  std::unique_ptr<ddlm::CoordinatorClient> client =
      ddlm::NewGrpcCoordinatorClient(ddlm::NewCoordinatorChannel(coordinator, *credentials));
  Worker worker(client.get(), id, host, device, collective);
  std::thread signal_thread([&] {
    const int sig = ddlm::WaitForShutdownSignal();
    if (sig == 0) return;  // Run returned by itself.
    LOG(INFO) << "signal " << sig << ": shutting down";
    worker.Shutdown();
  });
  const int code = worker.Run();
  ddlm::WakeShutdownWaiter();
  signal_thread.join();  // Before `worker`, which it refers to, is gone.
  return code;
}
