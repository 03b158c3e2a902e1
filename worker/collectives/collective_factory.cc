#include "worker/collectives/collective_factory.h"

#include "absl/strings/str_cat.h"
#include "worker/collectives/gloo_collective.h"
#include "worker/collectives/nccl_collective.h"

namespace ddlm {

absl::StatusOr<CollectiveBackend> ParseCollectiveBackend(absl::string_view name) {
  if (name == "auto") return CollectiveBackend::kAuto;
  if (name == "gloo") return CollectiveBackend::kGloo;
  if (name == "nccl") return CollectiveBackend::kNccl;
  return absl::InvalidArgumentError(absl::StrCat("collective backend '", name, "' is none of auto, gloo, nccl"));
}

absl::string_view CollectiveBackendName(CollectiveBackend backend) {
  switch (backend) {
    case CollectiveBackend::kAuto: return "auto";
    case CollectiveBackend::kGloo: return "gloo";
    case CollectiveBackend::kNccl: return "nccl";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<Collective>> CreateCollective(const torch::Device& device, CollectiveBackend backend,
                                                             const CollectiveOptions& options, KeyValueStore* store) {
  if (device.is_cpu()) {
    if (backend == CollectiveBackend::kNccl) {
      return absl::InvalidArgumentError("collective backend 'nccl' needs a CUDA device, not 'cpu'");
    }
    return CreateGlooCollective(options, store);
  }
  if (device.is_cuda()) {
    // Gloo for a GPU: gradients cross host memory (the reducer stages them), e.g. for
    // several ranks on one GPU, which NCCL refuses.
    if (backend == CollectiveBackend::kGloo) return CreateGlooCollective(options, store);
    return CreateNcclCollective(options, store, device.has_index() ? device.index() : 0);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("collective device '", device.str(), "' is neither \"cpu\" nor \"cuda:N\""));
}

}  // namespace ddlm
