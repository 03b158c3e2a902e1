#ifndef DDLM_COORDINATOR_JOB_STORE_H_
#define DDLM_COORDINATOR_JOB_STORE_H_

// The coordinator's state directory:
//
//   <state_dir>/jobs/<job_id>/job.pb                 snapshot: JobRecord (generation G)
//   <state_dir>/jobs/<job_id>/events.log             changes since the snapshot
//   <state_dir>/jobs/<job_id>/checkpoints/<id>.ckpt  checkpoint files (common/training/checkpoint.h)
//
// A job changes with every event. Rewriting its whole record each time would cost
// O(events) per event, O(events^2) over a job. Instead each change appends one frame to
// events.log: a JobLogEntry with the event and the job's header and kept checkpoints
// (O(1) in the job's length). The snapshot is rewritten whole only when the job ends
// (compaction), with generation G+1, and the log then starts again empty.
//
//   job.pb      "DDLMJOB1" | u32 CRC-32 of the record | serialized JobRecord, written
//               atomically (temp file, fsync, rename).
//   events.log  frames of  u32 length | u32 CRC-32 of the payload | JobLogEntry
//               (little-endian).
//
// Loading replays the log over the snapshot, skipping entries of an older generation
// (a crash between a snapshot's rename and the log's truncation leaves them). A torn
// last frame (a crash mid-append) is cut off with a warning; a job with a damaged
// snapshot (or a log that does not replay) is set aside under <state_dir>/damaged/ and
// reported, and the other jobs load. A failed append cuts the log back to where it was, so
// later frames never follow a torn one.
//
// Threading: thread-compatible. The log methods (AppendLog, SyncLogs, WriteSnapshot)
// keep open files and are called by one thread at a time (JobRecordWriter's); the
// checkpoint methods share no state and may run alongside them.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/job.pb.h"

namespace ddlm {

class JobStore {
 public:
  explicit JobStore(std::string state_dir) : state_dir_(std::move(state_dir)) {}
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Creates the directory tree. INTERNAL / PERMISSION_DENIED naming the path.
  absl::Status Init();

  // Writes `record` whole as the job's snapshot and empties its log. The caller gives
  // the record a generation above that of every entry already in the log.
  absl::Status WriteSnapshot(const JobRecord& record);
  // Appends one frame to the job's log (created if missing). Not yet synced: SyncLogs.
  // Once an append has failed (a full disk), the log misses a change, and a later
  // frame would leave a gap in the job's events: so every later append for that job
  // fails too (FAILED_PRECONDITION) until WriteSnapshot rewrites the record whole.
  absl::Status AppendLog(const std::string& job_id, const JobLogEntry& entry);
  // Syncs every log appended to since the last call.
  absl::Status SyncLogs();

  // Every job, snapshot plus log, in submission order. A job whose snapshot or log
  // is damaged (not just a torn last frame) is moved whole to <state_dir>/damaged/ and
  // left out; `set_aside` (if given) gets one entry per such job, naming the file and
  // the damage. Leftovers of a crash are removed from each loaded job: temporary files,
  // unfinished checkpoint uploads, and checkpoint files its record no longer keeps.
  struct SetAside {
    std::string job_id;  // The job's directory name.
    std::string report;  // The damage, and where the job now lies.
  };
  absl::StatusOr<std::vector<JobRecord>> LoadAll(std::vector<SetAside>* set_aside = nullptr);

  // Removes the job's directory (record, log, checkpoints): renamed away first (one
  // atomic step: a crash leaves the job whole or gone), then deleted. Job ids up to
  // this one's number are remembered in <state_dir>/last_deleted_job, so that no new
  // job takes the id again (LastDeletedJobNumber).
  absl::Status DeleteJob(const std::string& job_id);
  // The highest job number DeleteJob removed (0 if none).
  int64_t LastDeletedJobNumber() const;

  std::string CheckpointPath(const std::string& job_id, const std::string& checkpoint_id) const;
  absl::Status WriteCheckpoint(const std::string& job_id, const std::string& checkpoint_id, absl::string_view bytes);
  absl::Status DeleteCheckpoint(const std::string& job_id, const std::string& checkpoint_id);
  // Creates the file for `checkpoint_id` (which must not exist) for writing; the caller
  // owns and closes the descriptor.
  absl::StatusOr<int> CreateCheckpointFile(const std::string& job_id, const std::string& checkpoint_id);
  // Atomic rename (then a directory fsync) of one checkpoint file over another name.
  absl::Status RenameCheckpoint(const std::string& job_id, const std::string& from, const std::string& to);
  // Makes `link` a second name of checkpoint `checkpoint_id`'s file (a hard link), so
  // that the file can be put back after a rename over it. False (and nothing done) if
  // there is no such file.
  absl::StatusOr<bool> LinkCheckpoint(const std::string& job_id, const std::string& checkpoint_id,
                                      const std::string& link);

  const std::string& state_dir() const { return state_dir_; }
  std::string LogPath(const std::string& job_id) const;

 private:
  struct OpenLog {
    int fd = -1;
    int64_t size = 0;  // Bytes of whole frames.
    bool dirty = false;
  };
  std::string JobDir(const std::string& job_id) const;
  absl::StatusOr<OpenLog*> Open(const std::string& job_id);
  void Close(const std::string& job_id);
  void RemoveLeftovers(const JobRecord& record);
  // Replays `job_id`'s log over `record`, cutting off a torn tail.
  absl::Status Replay(const std::string& job_id, JobRecord& record);

  std::string state_dir_;
  std::map<std::string, OpenLog> logs_;
  std::set<std::string> behind_;  // Jobs whose log missed a change (see AppendLog).
};

// The N of a job id "job-N"; 0 for anything else.
int64_t JobNumber(const std::string& job_id);

// Framing used for job.pb and events.log, exposed for tests.
std::string EncodeJobRecord(const JobRecord& record);
absl::StatusOr<JobRecord> DecodeJobRecord(absl::string_view bytes, absl::string_view source);
std::string EncodeLogFrame(const JobLogEntry& entry);
// Applies `entry` to `record` (the job's header, its checkpoints and the event, which
// must be the next in sequence). FAILED_PRECONDITION for an out-of-sequence event.
absl::Status ApplyLogEntry(const JobLogEntry& entry, JobRecord& record);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_JOB_STORE_H_
