#ifndef DDLM_WORKER_COLLECTIVES_NCCL_COLLECTIVE_H_
#define DDLM_WORKER_COLLECTIVES_NCCL_COLLECTIVE_H_

// The GPU Collective: NCCL on one CUDA device per rank.
//
// Built for real only with --config=cuda (nccl_collective.cc); the default build links
// a stand-in (nccl_collective_stub.cc) whose factory returns UNIMPLEMENTED, so callers
// need no #ifdef.
//
// Rendezvous: rank 0 creates an NCCL unique id and sets it in `store` under
// "nccl_unique_id" under options.store_prefix (a PrefixStore); the other ranks wait for it (up to
// options.timeout, DEADLINE_EXCEEDED) and all call ncclCommInitRank. Note that NCCL's
// own connection set-up inside ncclCommInitRank is not bounded by options.timeout.
//
// Collectives follow collective.h's contract. Tensors must be contiguous and on
// cuda:`cuda_device`; AllReduceSum takes float32, Broadcast and AllGather any dtype
// (moved as bytes). Each operation runs on the collective's own non-blocking CUDA
// stream, ordered by CUDA events alone: after the work queued so far on the calling
// thread's current stream (or, for AllReduceSumOrdered, after its `ready` event), and
// it returns once the stream is idle, so the result is ready for any stream (and
// AllReduceSumOrdered records `done` for a consumer stream to wait on). An
// operation that does not finish within options.timeout, or that NCCL reports failed,
// aborts the communicator (DEADLINE_EXCEEDED / UNAVAILABLE / INTERNAL naming the
// operation and ncclGetErrorString); later calls then return FAILED_PRECONDITION.
//
// Threading: a collective is used from one thread at a time; it sets the CUDA device
// of the calling thread to `cuda_device` before each call into CUDA or NCCL.

#include <memory>

#include "absl/status/statusor.h"
#include "common/base/key_value_store.h"
#include "worker/collectives/collective.h"

namespace ddlm {

// `store` is not owned and must outlive the call (not the collective).
absl::StatusOr<std::unique_ptr<Collective>> CreateNcclCollective(const CollectiveOptions& options, KeyValueStore* store,
                                                                 int cuda_device);

}  // namespace ddlm

#endif  // DDLM_WORKER_COLLECTIVES_NCCL_COLLECTIVE_H_
