#ifndef DDLM_COORDINATOR_RECORD_WRITER_H_
#define DDLM_COORDINATOR_RECORD_WRITER_H_

// Persists job records off the coordinator's lock, with group commit.
//
// The coordinator queues each change under its own lock (Append, Snapshot: no I/O, a
// copy of a few kilobytes) and gets a ticket. After releasing its lock, the RPC that
// made the change calls Flush(ticket) and answers only once the change is on disk, or
// fails with the write's error. The first flusher to arrive writes everything queued,
// in order, and syncs each touched log once; flushers arriving meanwhile wait, and the
// next of them writes what queued up during that sync. So N concurrent changes cost
// about one sync, not N, and the coordinator's lock is never held across a write.
//
// Threading: thread-safe. Append and Snapshot never block on I/O; Flush does, without
// any lock of the caller's held.

#include <cstdint>
#include <deque>
#include <map>
#include <vector>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/job_store.h"
#include "proto/job.pb.h"

namespace ddlm {

class JobRecordWriter {
 public:
  // `before_write` (tests only; may be empty) runs before each batch is written,
  // without any lock held.
  explicit JobRecordWriter(JobStore* store /* not owned */, std::function<void()> before_write = {})
      : store_(store), before_write_(std::move(before_write)) {}

  // Queues one frame for the job's log. Returns its ticket.
  uint64_t Append(const std::string& job_id, JobLogEntry entry) ABSL_LOCKS_EXCLUDED(mu_);
  // Queues a rewrite of the job's snapshot (which empties its log). Returns its ticket.
  uint64_t Snapshot(JobRecord record) ABSL_LOCKS_EXCLUDED(mu_);
  // Returns once every write up to `ticket` is on disk: OK, or the error of the batch
  // that held `ticket`. Flush(0) returns at once.
  absl::Status Flush(uint64_t ticket) ABSL_LOCKS_EXCLUDED(mu_);

  // The jobs whose changes failed to be written since the last call (a full disk): the
  // caller fails them, naming the error.
  std::map<std::string, absl::Status> TakeFailedJobs() ABSL_LOCKS_EXCLUDED(mu_);

  // Writes done and syncs issued so far (for tests and benchmarks).
  int64_t writes() ABSL_LOCKS_EXCLUDED(mu_);
  int64_t syncs() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Op {
    uint64_t ticket = 0;
    std::string job_id;
    std::optional<JobLogEntry> entry;
    std::optional<JobRecord> snapshot;
  };
  struct Failure {
    uint64_t first = 0, last = 0;
    absl::Status status;
  };

  // Writes `batch` in order and syncs; no lock held. Adds the jobs whose writes failed
  // to `failed`.
  absl::Status WriteBatch(std::deque<Op>& batch, std::map<std::string, absl::Status>* failed);

  JobStore* const store_;
  const std::function<void()> before_write_;
  absl::Mutex mu_;
  std::deque<Op> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t durable_ ABSL_GUARDED_BY(mu_) = 0;  // Every ticket <= this one was written.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Failure> failures_ ABSL_GUARDED_BY(mu_);  // The latest few.
  std::map<std::string, absl::Status> failed_jobs_ ABSL_GUARDED_BY(mu_);
  int64_t writes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_RECORD_WRITER_H_
