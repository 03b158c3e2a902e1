#ifndef DDLM_WORKER_COLLECTIVES_COLLECTIVE_H_
#define DDLM_WORKER_COLLECTIVES_COLLECTIVE_H_

// The collectives a data-parallel worker needs, behind one small interface (after
// c10d's ProcessGroup): Gloo over TCP for CPU tensors (gloo_collective.h) and NCCL for
// CUDA tensors (nccl_collective.h, built only with --config=cuda). Both rendezvous
// through a KeyValueStore (common/base/key_value_store.h) that the coordinator serves.
//
// Contract: every rank calls the same collectives in the same order with tensors of
// the same shapes and dtypes; a rank that skips one makes the others time out.
// Tensors must be contiguous and on the collective's device. Errors (a peer gone, a
// timeout) come back as absl::Status; no exception escapes.
//
// Threading: a Collective is used from one thread at a time.

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/key_value_store.h"
#include "common/training/device.h"

namespace ddlm {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Where its tensors must be: the CPU (Gloo) or one CUDA device (NCCL).
  virtual torch::Device device() const = 0;
  // Sums `tensor` (float32, or bfloat16: each partial sum rounded to bfloat16) over all
  // ranks, in place, on every rank, with the same result on every rank. A device
  // collective orders the operation after the work already queued on the calling
  // thread's current stream, and the result is ready for any stream on return.
  virtual absl::Status AllReduceSum(torch::Tensor& tensor) = 0;
  // AllReduceSum of a buffer filled on another thread's stream (the gradient reducer's
  // communication thread): the operation waits on the device for `ready`, recorded
  // after the writes, and records `done` once the sum is in `tensor`, so the consumer's
  // stream can wait for it without the host. Null events (CPU tensors) order nothing.
  virtual absl::Status AllReduceSumOrdered(torch::Tensor& tensor, DeviceEvent* ready, DeviceEvent* done) {
    if (ready != nullptr) ready->WaitOnCurrentStream();
    absl::Status status = AllReduceSum(tensor);
    if (done != nullptr) done->RecordOnCurrentStream();
    return status;
  }
  // Copies root's `tensor` into every other rank's `tensor`, in place.
  virtual absl::Status Broadcast(torch::Tensor& tensor, int root) = 0;
  // Returns [world_size, ...tensor.sizes()]: every rank's `tensor`, in rank order.
  // Any dtype (copied as bytes).
  virtual absl::StatusOr<torch::Tensor> AllGather(const torch::Tensor& tensor) = 0;
  virtual absl::Status Barrier() = 0;
};

struct CollectiveOptions {
  int rank = 0;
  int world_size = 1;
  // Keys this group uses in the store start with this (one prefix per job attempt).
  std::string store_prefix;
  // The address peers connect to for this rank (Gloo's TCP device binds to it).
  std::string host = "127.0.0.1";
  // Bound on connecting and on every collective; a dead peer surfaces as an error.
  absl::Duration timeout = absl::Minutes(5);
};

}  // namespace ddlm

#endif  // DDLM_WORKER_COLLECTIVES_COLLECTIVE_H_
