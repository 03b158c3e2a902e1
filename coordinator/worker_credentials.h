#ifndef DDLM_COORDINATOR_WORKER_CREDENTIALS_H_
#define DDLM_COORDINATOR_WORKER_CREDENTIALS_H_

// Which credential (the name of a worker token, access_control.h) each worker id is
// bound to. The first registration of an id binds it; a registration under another
// credential is refused, and so is every other worker call that names the id: an
// impostor cannot register over a live worker, nor act in its name. A binding lasts
// until the registry forgets the worker (dead past the grace period) or the
// coordinator restarts; then the next registration binds the id again.
//
// Threading: thread-safe, with its own mutex, so that heartbeats are checked without
// the coordinator's lock.

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace ddlm {

class WorkerCredentials {
 public:
  // Binds `worker_id` to `credential` unless it is bound to another one
  // (PERMISSION_DENIED). True if this call made the binding (it was unbound).
  absl::StatusOr<bool> Bind(const std::string& worker_id, const std::string& credential) ABSL_LOCKS_EXCLUDED(mu_);
  // PERMISSION_DENIED if `worker_id` is bound to another credential; an unbound id
  // passes (the registry answers NOT_FOUND for it).
  absl::Status Check(const std::string& worker_id, const std::string& credential) const ABSL_LOCKS_EXCLUDED(mu_);
  void Forget(const std::string& worker_id) ABSL_LOCKS_EXCLUDED(mu_);
  int size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> bound_ ABSL_GUARDED_BY(mu_);  // worker id -> credential.
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_WORKER_CREDENTIALS_H_
