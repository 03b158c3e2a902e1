#ifndef DDLM_COORDINATOR_CHECKPOINT_STORE_H_
#define DDLM_COORDINATOR_CHECKPOINT_STORE_H_

// A job's checkpoints, as the coordinator keeps them: what an upload becomes (verified,
// named by its position, described), how the list of kept ones changes with it (the
// same id replaced, the best mark moved, retention applied: retention.h), and which one
// a request means ("best", "latest" or an id). The files themselves live in the
// JobStore; the list lives in the job's record.
//
// The Coordinator stages an upload's file (without its lock), then under its lock
// checks the attempt is still current, renames the file over its id, updates the list
// with AddToKept, and deletes the dropped files only once the record is on disk.
//
// Threading: free functions on values.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_field.h"
#include "proto/checkpoint.pb.h"
#include "proto/job.pb.h"

namespace ddlm {

// Verifies an uploaded checkpoint (magic, version, index, CRC-32: DATA_LOSS naming
// `source` otherwise) and describes it: id "e%04d-s%08d" from its epoch and global
// step, position, learning rate, validation loss and best flag at an epoch end, size,
// checksum, and `attempt`. `header` (if given) receives the checkpoint's header.
absl::StatusOr<CheckpointInfo> DescribeUpload(absl::string_view bytes, int32_t attempt, absl::string_view source,
                                              CheckpointHeader* header = nullptr);

// Adds `info` to `kept` (oldest first): one of the same id (re-written by a resumed
// attempt) is replaced, a new best takes the best mark from the others, and retention
// keeps the latest `keep_last` plus the best. Returns the ids it dropped.
std::vector<std::string> AddToKept(google::protobuf::RepeatedPtrField<CheckpointInfo>* kept, const CheckpointInfo& info,
                                   int keep_last);

// The id of the kept checkpoint `which` names: "best" (also ""; the newest flagged
// best, else the latest), "latest", or an id. FAILED_PRECONDITION when none is kept,
// NOT_FOUND for an id not kept; messages name `job_id`.
absl::StatusOr<std::string> ResolveCheckpoint(const google::protobuf::RepeatedPtrField<CheckpointInfo>& kept,
                                              const std::string& which, const std::string& job_id);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_CHECKPOINT_STORE_H_
