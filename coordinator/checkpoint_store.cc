#include "coordinator/checkpoint_store.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/checkpoint_format.h"
#include "common/base/file_io.h"
#include "coordinator/retention.h"

namespace ddlm {

absl::StatusOr<CheckpointInfo> DescribeUpload(absl::string_view bytes, int32_t attempt, absl::string_view source,
                                              CheckpointHeader* header) {
  // Verified without turning its tensors into tensors: the control plane needs only
  // the header.
  absl::StatusOr<CheckpointView> checkpoint = ParseCheckpointView(bytes, source);
  if (!checkpoint.ok()) return checkpoint.status();
  const CheckpointHeader& h = checkpoint->header;
  if (header != nullptr) *header = h;
  CheckpointInfo info;
  info.set_id(absl::StrFormat("e%04d-s%08d", h.position().epoch(), h.position().global_step()));
  info.set_epoch(h.position().epoch());
  info.set_batch(h.position().batch());
  info.set_global_step(h.position().global_step());
  info.set_lr(h.lr());
  if (h.has_val_loss() && h.position().batch() == 0) {
    info.set_val_loss(h.val_loss());
    info.set_val_ppl(std::exp(h.val_loss()));
    info.set_best(h.has_best_val_loss() && h.best_val_loss() == h.val_loss());
  }
  if (h.has_best_val_loss()) info.set_best_val_loss(h.best_val_loss());
  info.set_size_bytes(bytes.size());
  info.set_crc32(Crc32(bytes.substr(0, bytes.size() - 4)));  // = the file's trailer.
  info.set_created_unix_seconds(h.created_unix_seconds());
  info.set_attempt(attempt);
  info.set_world_size(h.spec().num_workers());
  return info;
}

std::vector<std::string> AddToKept(google::protobuf::RepeatedPtrField<CheckpointInfo>* kept, const CheckpointInfo& info,
                                   int keep_last) {
  for (int i = 0; i < kept->size(); ++i) {
    if (kept->Get(i).id() == info.id()) {  // Re-written by a resumed attempt.
      kept->DeleteSubrange(i, 1);
      break;
    }
  }
  if (info.best()) {
    for (CheckpointInfo& c : *kept) c.set_best(false);
  }
  *kept->Add() = info;
  std::vector<std::string> doomed =
      CheckpointsToDelete(std::vector<CheckpointInfo>(kept->begin(), kept->end()), keep_last);
  for (const std::string& id : doomed) {
    for (int i = 0; i < kept->size(); ++i) {
      if (kept->Get(i).id() == id) {
        kept->DeleteSubrange(i, 1);
        break;
      }
    }
  }
  return doomed;
}

absl::StatusOr<std::string> ResolveCheckpoint(const google::protobuf::RepeatedPtrField<CheckpointInfo>& kept,
                                              const std::string& which, const std::string& job_id) {
  if (kept.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("job '", job_id, "' has no checkpoint yet"));
  }
  if (which == "latest") return kept[kept.size() - 1].id();
  if (which.empty() || which == "best") {
    std::string id = kept[kept.size() - 1].id();
    for (const CheckpointInfo& c : kept) {
      if (c.best()) id = c.id();
    }
    return id;
  }
  for (const CheckpointInfo& c : kept) {
    if (c.id() == which) return c.id();
  }
  return absl::NotFoundError(absl::StrCat("checkpoint '", which, "': job '", job_id, "' keeps no such checkpoint"));
}

}  // namespace ddlm
