#ifndef DDLM_WORKER_COLLECTIVES_COLLECTIVE_FACTORY_H_
#define DDLM_WORKER_COLLECTIVES_COLLECTIVE_FACTORY_H_

// Picks the Collective backend for a device (ResolveDevice's, common/training/device.h), so that
// callers configure a device rather than a backend:
//   cpu     -> Gloo over TCP (gloo_collective.h)
//   cuda:N  -> NCCL on CUDA device N (nccl_collective.h; UNIMPLEMENTED unless built
//              with --config=cuda)
// Any other device type is INVALID_ARGUMENT naming it. `backend` kAuto is the above;
// kGloo is Gloo for a CUDA device too (its gradients go through host memory, as for
// two ranks sharing one GPU); kNccl is for CUDA devices only (INVALID_ARGUMENT on the
// CPU). Otherwise the backend's rendezvous contract and errors apply; `store` is not
// owned and must outlive the call.
//
// Threading: safe to call concurrently (one call per rank).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/key_value_store.h"
#include "torch/torch.h"
#include "worker/collectives/collective.h"

namespace ddlm {

enum class CollectiveBackend { kAuto, kGloo, kNccl };

// "auto", "gloo" or "nccl" (a flag's value); INVALID_ARGUMENT naming anything else.
absl::StatusOr<CollectiveBackend> ParseCollectiveBackend(absl::string_view name);
absl::string_view CollectiveBackendName(CollectiveBackend backend);

absl::StatusOr<std::unique_ptr<Collective>> CreateCollective(const torch::Device& device, CollectiveBackend backend,
                                                             const CollectiveOptions& options, KeyValueStore* store);

}  // namespace ddlm

#endif  // DDLM_WORKER_COLLECTIVES_COLLECTIVE_FACTORY_H_
