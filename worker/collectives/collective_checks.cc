#include "worker/collectives/collective_checks.h"

#include "absl/strings/str_cat.h"

namespace ddlm {

absl::Status ValidateCollectiveOptions(const CollectiveOptions& options) {
  if (options.world_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("collective world_size must be >= 1, got ", options.world_size));
  }
  if (options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("collective rank ", options.rank, " is outside [0, ", options.world_size, ")"));
  }
  if (options.timeout <= absl::ZeroDuration() || options.timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("collective timeout must be positive and finite, got ", absl::FormatDuration(options.timeout)));
  }
  if (options.host.empty()) {
    return absl::InvalidArgumentError("collective host is empty");
  }
  return absl::OkStatus();
}

absl::Status CheckTensor(absl::string_view op, const torch::Tensor& tensor, const torch::Device& device) {
  if (!tensor.defined()) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": tensor is undefined"));
  }
  if (!tensor.is_contiguous()) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": tensor is not contiguous"));
  }
  const torch::Device& actual = tensor.device();
  if (actual.type() != device.type() || (device.has_index() && actual.index() != device.index())) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": tensor is on ", actual.str(), ", this collective works on ", device.str()));
  }
  return absl::OkStatus();
}

absl::Status CheckRoot(absl::string_view op, int root, int world_size) {
  if (root < 0 || root >= world_size) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": root ", root, " is outside [0, ", world_size, ")"));
  }
  return absl::OkStatus();
}

}  // namespace ddlm
