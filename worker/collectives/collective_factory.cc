#include "worker/collectives/collective_factory.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "worker/collectives/gloo_collective.h"
#include "worker/collectives/nccl_collective.h"

namespace ddlm {

absl::StatusOr<std::unique_ptr<Collective>> CreateCollective(const std::string& device,
                                                             const std::string& backend,
                                                             const CollectiveOptions& options,
                                                             KeyValueStore* store) {
  if (backend != "auto" && backend != "gloo" && backend != "nccl") {
    return absl::InvalidArgumentError(
        absl::StrCat("collective backend '", backend, "' is none of auto, gloo, nccl"));
  }
  if (device == "cpu") {
    if (backend == "nccl") {
      return absl::InvalidArgumentError("collective backend 'nccl' needs a CUDA device, not 'cpu'");
    }
    return CreateGlooCollective(options, store);
  }
  absl::string_view index = device;
  int cuda_device = -1;
  // SimpleAtoi accepts signs and spaces; insist on plain digits.
  if (absl::ConsumePrefix(&index, "cuda:") && !index.empty() &&
      index.find_first_not_of("0123456789") == absl::string_view::npos &&
      absl::SimpleAtoi(index, &cuda_device)) {
    // Gloo for a GPU: gradients cross host memory (the reducer stages them), e.g. for
    // several ranks on one GPU, which NCCL refuses.
    if (backend == "gloo") return CreateGlooCollective(options, store);
    return CreateNcclCollective(options, store, cuda_device);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("collective device '", device, "' is neither \"cpu\" nor \"cuda:N\""));
}

}  // namespace ddlm
