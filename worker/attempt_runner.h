#ifndef DDLM_WORKER_ATTEMPT_RUNNER_H_
#define DDLM_WORKER_ATTEMPT_RUNNER_H_

// What a worker runs for one assignment: JobRunner (job_runner.h), or a fake in the
// worker agent's tests (worker_agent.h).

#include "absl/status/status.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

// Runs one assignment (JobRunner; a fake in tests).
class AttemptRunner {
 public:
  virtual ~AttemptRunner() = default;
  // Trains the attempt to its end; CANCELLED once RequestStop was called.
  virtual absl::Status Run() = 0;
  // Makes Run return soon (any thread).
  virtual void RequestStop() = 0;
  virtual const AttemptRef& attempt() const = 0;
};

}  // namespace ddlm

#endif  // DDLM_WORKER_ATTEMPT_RUNNER_H_
