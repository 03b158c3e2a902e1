#ifndef DDLM_WORKER_WORKER_AGENT_H_
#define DDLM_WORKER_WORKER_AGENT_H_

// A worker process's membership in the coordinator's pool, apart from its transport
// (a CoordinatorClient: gRPC in ddlm_worker, a fake in tests) and from training (an
// AttemptRunner per assignment: JobRunner in ddlm_worker).
//
// Run registers under a fresh incarnation, heartbeats, and follows the command stream:
// an assignment starts a runner (stopping any previous one), a cancel stops the named
// attempt's runner, or, if it is not running, reports it finished-cancelled again so
// that the coordinator can end the attempt. Every runner's end is reported with
// FinishAssignment, retried while the incarnation that ran it lives. The incarnation
// ends when the stream breaks, a heartbeat is refused (ABORTED / NOT_FOUND: declared
// dead, or a newer incarnation), or none is answered for the heartbeat timeout the
// coordinator gave (measured on the injected clock); the agent then stops its runner
// (what it ran is void) and registers again with a new incarnation, retrying with
// backoff while the coordinator is unreachable. A refused registration (a flag or a
// credential is wrong) ends Run with that status.
//
// Threading: Run blocks its caller, which reads the command stream; Run adds one
// heartbeat thread per incarnation and one runner thread per assignment. Shutdown may
// be called from any thread (a signal waiter); Run then stops the runner, deregisters
// and returns.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "proto/worker_service.pb.h"
#include "worker/attempt_runner.h"
#include "worker/coordinator_client.h"

namespace ddlm {

// Makes the runner of `assignment`, run by `worker` (this incarnation).
using AttemptRunnerFactory =
    std::function<std::shared_ptr<AttemptRunner>(const Assignment& assignment, const WorkerRef& worker)>;

// A fresh random non-zero incarnation.
uint64_t RandomIncarnation();

// Codes that say a registration or report is wrong in itself (a flag, a credential),
// so that trying again cannot help. Anything else (UNAVAILABLE, a call cut off by a
// coordinator that died mid-call: UNKNOWN, INTERNAL, CANCELLED...) is retried.
bool IsRefusal(absl::StatusCode code);

struct WorkerAgentOptions {
  std::string worker_id;
  std::string host;    // Where other workers reach this one.
  std::string device;  // As registered: "cpu" or "cuda:N".
  // Registration retries while the coordinator is unreachable: doubling up to max.
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
  // FinishAssignment retries: doubling from this up to max_backoff.
  absl::Duration finish_backoff = absl::Milliseconds(100);
  // Pause between an incarnation's end and the next registration.
  absl::Duration reregister_pause = absl::Milliseconds(200);
  std::function<uint64_t()> new_incarnation = RandomIncarnation;
  // Called on Run's thread after each successful registration (ddlm_worker prints it).
  std::function<void(const WorkerRef&)> on_registered;
};

class WorkerAgent {
 public:
  // `client` and `clock` (not owned) outlive the agent.
  WorkerAgent(CoordinatorClient* client, Clock* clock, WorkerAgentOptions options, AttemptRunnerFactory runners);
  ~WorkerAgent();

  // Until Shutdown: OK then (after deregistering). A refused registration's status
  // otherwise (nothing to deregister).
  absl::Status Run();
  void Shutdown();

 private:
  void ServeIncarnation(absl::Duration heartbeat_interval, absl::Duration heartbeat_timeout);
  void StartRunner(const Assignment& assignment);
  void Cancel(const AttemptRef& attempt);
  void ReportFinish(const FinishAssignmentRequest& finish);
  void StopRunner(const char* why);

  CoordinatorClient* const client_;
  Clock* const clock_;
  const WorkerAgentOptions options_;
  const AttemptRunnerFactory runners_;
  WorkerRef ref_;  // Written by Run's thread between incarnations only.
  absl::Notification shutdown_;
  absl::Mutex mu_;
  CommandStream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t live_incarnation_ ABSL_GUARDED_BY(mu_) = 0;  // 0 between incarnations.
  std::shared_ptr<AttemptRunner> runner_ ABSL_GUARDED_BY(mu_);
  std::thread runner_thread_;  // Touched by Run's thread only (under mu_ for moves).
};

}  // namespace ddlm

#endif  // DDLM_WORKER_WORKER_AGENT_H_
