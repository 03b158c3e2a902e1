#include "worker/rank_state.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace ddlm {
namespace {

bool IsRankLocal(const std::string& name) {
  return name == "rng/cpu" || name == "rng/cuda" || absl::StartsWith(name, "hidden/");
}

}  // namespace

absl::Status GatherRankState(Collective& collective, Checkpoint* checkpoint) {
  if (collective.world_size() == 1) return absl::OkStatus();
  std::vector<std::string> names;
  for (const auto& [name, tensor] : checkpoint->tensors) {
    if (IsRankLocal(name)) names.push_back(name);  // std::map: the same order everywhere.
  }
  for (const std::string& name : names) {
    // Checkpoint tensors are on the host; NCCL moves only device memory.
    const torch::Tensor mine = checkpoint->tensors[name].to(collective.device()).contiguous();
    DDLM_ASSIGN_OR_RETURN(torch::Tensor all, collective.AllGather(mine));
    if (collective.rank() != 0) continue;
    all = all.to(torch::kCPU);
    for (int r = 1; r < collective.world_size(); ++r) {
      checkpoint->tensors[absl::StrCat("rank/", r, "/", name)] = all[r].clone();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Checkpoint> CheckpointForNewRank(Checkpoint checkpoint, const torch::Device& device) {
  if (checkpoint.header.position().batch() != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("a rank the job did not have resumes only from an epoch-end checkpoint, not from epoch ",
                     checkpoint.header.position().epoch(), " batch ", checkpoint.header.position().batch()));
  }
  for (auto it = checkpoint.tensors.begin(); it != checkpoint.tensors.end();) {
    if (IsRankLocal(it->first) || absl::StartsWith(it->first, "rank/")) {
      it = checkpoint.tensors.erase(it);
    } else {
      ++it;
    }
  }
  CaptureRng(device, &checkpoint);
  return checkpoint;
}

absl::StatusOr<Checkpoint> CheckpointForRank(Checkpoint checkpoint, int rank) {
  if (rank > 0) {
    const std::string prefix = absl::StrCat("rank/", rank, "/");
    if (checkpoint.tensors.count(prefix + "rng/cpu") == 0) {
      return absl::FailedPreconditionError(absl::StrCat("the checkpoint holds no state for rank ", rank,
                                                        " (it was written by a job with ",
                                                        checkpoint.header.spec().num_workers(), " worker(s))"));
    }
    for (auto it = checkpoint.tensors.begin(); it != checkpoint.tensors.end();) {
      if (IsRankLocal(it->first)) {
        it = checkpoint.tensors.erase(it);
      } else {
        ++it;
      }
    }
    std::map<std::string, torch::Tensor> mine;
    for (const auto& [name, tensor] : checkpoint.tensors) {
      if (absl::StartsWith(name, prefix)) mine[name.substr(prefix.size())] = tensor;
    }
    for (auto& [name, tensor] : mine) checkpoint.tensors[name] = tensor;
  }
  for (auto it = checkpoint.tensors.begin(); it != checkpoint.tensors.end();) {
    if (absl::StartsWith(it->first, "rank/")) {
      it = checkpoint.tensors.erase(it);
    } else {
      ++it;
    }
  }
  return checkpoint;
}

}  // namespace ddlm
