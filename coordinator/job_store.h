#ifndef DDLM_COORDINATOR_JOB_STORE_H_
#define DDLM_COORDINATOR_JOB_STORE_H_

// The coordinator's state directory:
//
//   <state_dir>/jobs/<job_id>/job.pb                 JobRecord (state, events, checkpoints)
//   <state_dir>/jobs/<job_id>/checkpoints/<id>.ckpt  checkpoint files (common/checkpoint.h)
//
// job.pb is "DDLMJOB1" | u32 CRC-32 of the record | serialized JobRecord, written
// atomically (temp file, fsync, rename), so a crash leaves the old or the new record,
// and a damaged file is reported as DATA_LOSS naming it rather than read as garbage.
//
// Threading: thread-compatible (no shared state besides the filesystem). The
// Coordinator serializes writes to one job's record.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/job.pb.h"

namespace ddlm {

class JobStore {
 public:
  explicit JobStore(std::string state_dir) : state_dir_(std::move(state_dir)) {}

  // Creates the directory tree. INTERNAL / PERMISSION_DENIED naming the path.
  absl::Status Init();
  absl::Status SaveRecord(const JobRecord& record);
  // Every job record, in submission order. DATA_LOSS naming a damaged file.
  absl::StatusOr<std::vector<JobRecord>> LoadAll();

  std::string CheckpointPath(const std::string& job_id, const std::string& checkpoint_id) const;
  absl::Status WriteCheckpoint(const std::string& job_id, const std::string& checkpoint_id,
                               absl::string_view bytes);
  absl::Status DeleteCheckpoint(const std::string& job_id, const std::string& checkpoint_id);
  // Atomic rename (then a directory fsync) of one checkpoint file over another name.
  absl::Status RenameCheckpoint(const std::string& job_id, const std::string& from,
                                const std::string& to);

  const std::string& state_dir() const { return state_dir_; }

 private:
  std::string JobDir(const std::string& job_id) const;
  std::string state_dir_;
};

// Framing used for job.pb, exposed for tests.
std::string EncodeJobRecord(const JobRecord& record);
absl::StatusOr<JobRecord> DecodeJobRecord(absl::string_view bytes, absl::string_view source);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_JOB_STORE_H_
