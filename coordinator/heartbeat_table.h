#ifndef DDLM_COORDINATOR_HEARTBEAT_TABLE_H_
#define DDLM_COORDINATOR_HEARTBEAT_TABLE_H_

// When each worker incarnation last heartbeated, and whether it is still alive.
//
// Heartbeats are the one call that must never wait behind the coordinator's other work:
// a heartbeat stuck behind a slow scheduling pass would let the sweeper declare a live
// worker dead. So the table has its own mutex, held only for a map lookup, and the
// Coordinator answers Heartbeat from it without taking its own lock. The
// WorkerRegistry (under the Coordinator's lock) keeps it in step: registrations add an
// incarnation, deaths and departures mark it dead, and the sweeper expires from it.
//
// Threading: thread-safe; no I/O, no callbacks, no other lock taken inside.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

class HeartbeatTable {
 public:
  // `incarnation` of `worker_id` is now the live one, last heard at `now`.
  void Track(const std::string& worker_id, uint64_t incarnation, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // OK, NOT_FOUND for an unknown worker id, ABORTED for a replaced or dead incarnation
  // (the message says which, and to register again).
  absl::Status Beat(const WorkerRef& ref, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  void MarkDead(const std::string& worker_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Drops the worker id altogether (its calls are then NOT_FOUND).
  void Forget(const std::string& worker_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Marks dead, and returns, every live worker id silent for longer than `timeout`.
  std::vector<std::string> Expire(absl::Time now, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<absl::Time> LastBeat(const std::string& worker_id) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    uint64_t incarnation = 0;
    bool dead = false;
    absl::Time last;
  };
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_HEARTBEAT_TABLE_H_
