#ifndef DDLM_COORDINATOR_WORKER_REGISTRY_H_
#define DDLM_COORDINATOR_WORKER_REGISTRY_H_

// Worker membership, reservations and command routing. Each worker process registers
// with a fresh incarnation id; the registry tracks it by heartbeat:
//
//   Register ──> IDLE ──Reserve──> BUSY ──Release──> IDLE
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
// A BUSY worker holds one attempt of one job, as one rank (Reserve); only a Release
// naming that same attempt frees it, so a late report from an older attempt never frees
// a worker that has moved on.
//
// Commands reach a worker through its one attached stream (AttachStream, the
// StreamCommands call); while none is attached they wait in its outbox, which a stream
// that attaches gets first. A worker that dies or leaves loses its outbox.
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
#include "coordinator/stream_sink.h"
#include "proto/job_service.pb.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

struct WorkerEntry {
  WorkerInfo info;  // id, incarnation, host, device, state, job, rank.
  int64_t registration_order = 0;
  int32_t attempt = 0;                             // With info.job_id: the attempt this BUSY worker runs.
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
  // Marks IDLE worker `w` BUSY as rank `rank` of attempt `attempt` of `job_id`.
  void Reserve(WorkerEntry& w, const std::string& job_id, int32_t attempt, int32_t rank);
  // The worker, if it is BUSY with exactly that attempt; else null.
  WorkerEntry* Holding(const std::string& worker_id, const std::string& job_id, int32_t attempt);
  // If the worker is BUSY with exactly that attempt, it becomes IDLE (job, rank and
  // attempt cleared) and this returns true; else nothing changes.
  bool Release(const std::string& worker_id, const std::string& job_id, int32_t attempt);

  // To the worker's attached stream if any, else to its outbox. Nothing for an unknown
  // worker.
  void Send(const std::string& worker_id, WorkerCommand command);
  // Attaches `sink` as the live worker's stream (NOT_FOUND / ABORTED as Find): a stream
  // already attached for it is closed (ABORTED), and the outbox goes to `sink` first.
  absl::Status AttachStream(const WorkerRef& ref, StreamSink<WorkerCommand>* sink);
  // Forgets `sink` (not closed); nothing if it is not attached.
  void DetachStream(StreamSink<WorkerCommand>* sink);
  // Closes and forgets the worker's stream, if one is attached.
  void CloseStream(const std::string& worker_id, const absl::Status& status);
  void CloseAllStreams(const absl::Status& status);

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
  std::map<std::string, StreamSink<WorkerCommand>*> streams_;  // At most one per worker id.
  HeartbeatTable heartbeats_;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_WORKER_REGISTRY_H_
