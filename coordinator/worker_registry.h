#ifndef DDLM_COORDINATOR_WORKER_REGISTRY_H_
#define DDLM_COORDINATOR_WORKER_REGISTRY_H_

// Worker membership. Each worker process registers with a fresh incarnation id; the
// registry tracks it by heartbeat:
//
//   Register ──> IDLE ──assign──> BUSY ──finish──> IDLE
//                  │                │
//                  └──────┬─────────┘
//                         v
//                       DEAD   (no heartbeat within the timeout, or the same
//                               worker_id registered again with a new incarnation)
//
// A DEAD entry is kept (for ListWorkers) until the worker registers again, or until
// PruneDead drops it after a grace period (so that a pool whose workers come and go
// under ever new ids does not grow without bound). Calls from a stale incarnation get
// ABORTED; from an unknown (or pruned) worker id, NOT_FOUND.
//
// Liveness (the last heartbeat of each incarnation) lives in a HeartbeatTable that the
// registry keeps in step, so that heartbeats can be answered without the caller's lock.
//
// Threading: not thread-safe; the Coordinator calls it under its own mutex. Only
// heartbeats() is meant for use without that mutex.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/heartbeat_table.h"
#include "proto/job_service.pb.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

struct WorkerEntry {
  WorkerInfo info;  // id, incarnation, host, device, state, job, rank.
  int64_t registration_order = 0;
  int32_t attempt = 0;  // With info.job_id: the attempt this BUSY worker runs.
  absl::Time dead_since = absl::InfiniteFuture();  // When it became DEAD.
  // Commands not yet read by the worker's StreamCommands call.
  std::deque<WorkerCommand> outbox;
};

class WorkerRegistry {
 public:
  explicit WorkerRegistry(absl::Duration heartbeat_timeout) : timeout_(heartbeat_timeout) {}

  // Adds or replaces the worker. If it replaced a BUSY incarnation, returns that
  // incarnation's entry as it was (so the caller can fail its job attempt).
  // INVALID_ARGUMENT naming an empty field or a zero incarnation.
  absl::StatusOr<std::optional<WorkerEntry>> Register(const WorkerRef& ref, const std::string& host,
                                                      const std::string& device, absl::Time now);
  // What Register checks of a registration before changing anything.
  static absl::Status Validate(const WorkerRef& ref, const std::string& host, const std::string& device);
  // The live entry for `ref`: NOT_FOUND for an unknown id, ABORTED for a stale or
  // dead incarnation.
  absl::StatusOr<WorkerEntry*> Find(const WorkerRef& ref);
  // heartbeats().Beat(ref, now).
  absl::Status Heartbeat(const WorkerRef& ref, absl::Time now);
  // Marks every live worker whose last heartbeat is older than the timeout DEAD and
  // returns them as they were before (so the caller can fail their jobs).
  std::vector<WorkerEntry> ExpireStale(absl::Time now);
  // Marks the worker DEAD (it left) and drops its queued commands.
  void MarkDead(const std::string& worker_id, absl::Time now);
  // Forgets workers DEAD for longer than `grace`; returns their ids.
  std::vector<std::string> PruneDead(absl::Time now, absl::Duration grace);
  // Thread-safe: usable without the lock that guards the rest.
  HeartbeatTable& heartbeats() { return heartbeats_; }
  // IDLE workers, oldest registration first.
  std::vector<WorkerEntry*> Idle();
  WorkerEntry* Get(const std::string& worker_id);
  // With each worker's last heartbeat.
  std::vector<WorkerInfo> List();
  int live_count() const;
  absl::Duration timeout() const { return timeout_; }

 private:
  absl::Duration timeout_;
  int64_t next_order_ = 0;
  std::map<std::string, WorkerEntry> workers_;
  HeartbeatTable heartbeats_;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_WORKER_REGISTRY_H_
