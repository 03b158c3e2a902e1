// The default build's stand-in for nccl_collective.cc (see nccl_collective.h): no CUDA
// or NCCL headers are needed.

#include "worker/collectives/nccl_collective.h"

namespace ddlm {

absl::StatusOr<std::unique_ptr<Collective>> CreateNcclCollective(const CollectiveOptions& /*options*/,
                                                                 KeyValueStore* /*store*/, int /*cuda_device*/) {
  return absl::UnimplementedError("NCCL collectives: built without --config=cuda");
}

}  // namespace ddlm
