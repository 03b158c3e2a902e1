#ifndef DDLM_WORKER_COLLECTIVES_COLLECTIVE_FACTORY_H_
#define DDLM_WORKER_COLLECTIVES_COLLECTIVE_FACTORY_H_

// Picks the Collective backend for a device string, so that callers configure one
// string ("cpu", "cuda:0") rather than a backend:
//   "cpu"     -> Gloo over TCP (gloo_collective.h)
//   "cuda:N"  -> NCCL on CUDA device N (nccl_collective.h; UNIMPLEMENTED unless built
//                with --config=cuda)
// Anything else is INVALID_ARGUMENT naming the string. `backend` is "auto" (the above),
// "gloo" (Gloo for a CUDA device too: its gradients go through host memory, as for two
// ranks sharing one GPU) or "nccl" (CUDA devices only). Otherwise the backend's
// rendezvous contract and errors apply; `store` is not owned and must outlive the call.
//
// Threading: safe to call concurrently (one call per rank).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/key_value_store.h"
#include "worker/collectives/collective.h"

namespace ddlm {

absl::StatusOr<std::unique_ptr<Collective>> CreateCollective(const std::string& device,
                                                             const std::string& backend,
                                                             const CollectiveOptions& options,
                                                             KeyValueStore* store);

}  // namespace ddlm

#endif  // DDLM_WORKER_COLLECTIVES_COLLECTIVE_FACTORY_H_
