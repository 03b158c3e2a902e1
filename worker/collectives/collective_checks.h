#ifndef DDLM_WORKER_COLLECTIVES_COLLECTIVE_CHECKS_H_
#define DDLM_WORKER_COLLECTIVES_COLLECTIVE_CHECKS_H_

// Argument checks shared by the Collective backends, so that Gloo and NCCL reject the
// same bad inputs with the same INVALID_ARGUMENT messages before touching the network.
//
// Threading: stateless functions, safe from any thread.

#include <torch/torch.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "worker/collectives/collective.h"

namespace ddlm {

// INVALID_ARGUMENT unless 1 <= world_size, 0 <= rank < world_size, the timeout is
// positive and finite and the host is set.
absl::Status ValidateCollectiveOptions(const CollectiveOptions& options);

// INVALID_ARGUMENT naming `op` unless `tensor` is defined, contiguous and on `device`
// (device type, and the index when `device` has one).
absl::Status CheckTensor(absl::string_view op, const torch::Tensor& tensor, const torch::Device& device);

// INVALID_ARGUMENT naming `op` unless 0 <= root < world_size.
absl::Status CheckRoot(absl::string_view op, int root, int world_size);

}  // namespace ddlm

#endif  // DDLM_WORKER_COLLECTIVES_COLLECTIVE_CHECKS_H_
