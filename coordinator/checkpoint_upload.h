#ifndef DDLM_COORDINATOR_CHECKPOINT_UPLOAD_H_
#define DDLM_COORDINATOR_CHECKPOINT_UPLOAD_H_

// One checkpoint upload in progress (WorkerService.UploadCheckpoint). Its bytes go to
// a staging file in the job's directory as they come, never more than a checkpoint of
// the job can weigh (MaxCheckpointBytes, common/training/checkpoint.h), so a flood costs neither
// memory nor more than that much disk. Finish verifies the file (checkpoint_store.h:
// magic, version, index, CRC-32) and that it holds the job's model and vocabulary, then
// hands it to `keep`, which makes it a kept checkpoint (the Coordinator: renamed over its
// id if the attempt is still current, recorded, retention applied). An upload destroyed
// without being kept removes its staging file.
//
// Threading: one thread at a time (the stream's handler). Nothing here takes the
// Coordinator's lock; only `keep` does.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/job_store.h"
#include "proto/config.pb.h"
#include "proto/job.pb.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

class CheckpointUpload {
 public:
  // What the job's checkpoints must be.
  struct Expected {
    int64_t max_bytes = 0;
    ModelConfig model;
    int64_t vocabulary_size = 0;
  };
  // Makes the verified staging file (a name in the job's checkpoint directory) the
  // kept checkpoint `info`, or refuses it (e.g. ABORTED for an attempt no longer current).
  using Keep = std::function<absl::StatusOr<CheckpointInfo>(const std::string& staging, const CheckpointInfo& info)>;

  // Creates the staging file `staging` for an upload from `attempt` (`store` not owned).
  static absl::StatusOr<std::unique_ptr<CheckpointUpload>> Create(JobStore* store, const AttemptRef& attempt,
                                                                  std::string staging, Expected expected, Keep keep);
  ~CheckpointUpload();
  CheckpointUpload(const CheckpointUpload&) = delete;
  CheckpointUpload& operator=(const CheckpointUpload&) = delete;

  // RESOURCE_EXHAUSTED once the bytes pass Expected.max_bytes; a write error naming the
  // staging file; FAILED_PRECONDITION after Finish.
  absl::Status Append(absl::string_view data);
  // Syncs the file and verifies it: DATA_LOSS for a damaged one, INVALID_ARGUMENT for
  // another model or vocabulary than the job's; then `keep`'s answer.
  absl::StatusOr<CheckpointInfo> Finish();

  int64_t bytes() const { return written_; }

 private:
  CheckpointUpload(JobStore* store, const AttemptRef& attempt, std::string staging, Expected expected, Keep keep);
  std::string Path() const;

  JobStore* const store_;
  const AttemptRef attempt_;
  const std::string staging_;
  const Expected expected_;
  const Keep keep_;
  int fd_ = -1;
  int64_t written_ = 0;
  bool kept_ = false;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_CHECKPOINT_UPLOAD_H_
