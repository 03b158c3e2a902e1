#ifndef DDLM_WORKER_GRADIENT_REDUCER_H_
#define DDLM_WORKER_GRADIENT_REDUCER_H_

// Data-parallel gradient averaging for Trainer::set_gradient_reducer.
//
// Gradients are packed, in model order, into a few flat buckets of about
// `bucket_bytes` each (c10d's DDP uses 25 MiB: large enough that each all-reduce runs
// near link bandwidth, small enough that the packing buffers stay a fraction of the
// model), each bucket is summed over ranks in one call, divided by the world size, and
// unpacked in place. Every rank computes (g_0 + ... + g_{W-1}) / W with the same
// operations, so all ranks keep bit-identical parameters.
//
// The last bucket carries one extra float: this rank's stop request. After Reduce,
// stop_agreed() is true on every rank if any rank asked to stop before the call, so
// all ranks leave the training loop after the same step (no rank is left waiting in a
// collective for a peer that stopped).
//
// Threading: Reduce runs on the training thread; RequestStop may be called from any
// thread.

#include <atomic>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "worker/collectives/collective.h"

namespace ddlm {

struct ReducerStats {
  int64_t calls = 0;           // Reduce calls (training steps).
  int64_t collectives = 0;     // All-reduce calls.
  int64_t bytes = 0;           // Bytes all-reduced (per rank).
  double allreduce_seconds = 0;  // Inside the collective.
  double pack_seconds = 0;       // Packing, averaging and unpacking.
};

class GradientAllReducer {
 public:
  static constexpr int64_t kDefaultBucketBytes = 25 << 20;

  // `external_stop`, if given (not owned; must outlive the reducer), is read like
  // RequestStop: setting it asks every rank to stop after the next step.
  explicit GradientAllReducer(Collective* collective /* not owned */,
                              int64_t bucket_bytes = kDefaultBucketBytes,
                              const std::atomic<bool>* external_stop = nullptr)
      : collective_(collective), bucket_bytes_(bucket_bytes), external_stop_(external_stop) {}

  absl::Status Reduce(const std::vector<torch::Tensor>& grads);
  void RequestStop() { stop_requested_ = true; }
  // Pass to Trainer::TrainEpoch as its stop flag.
  const std::atomic<bool>* stop_agreed() const { return &stop_agreed_; }
  const ReducerStats& stats() const { return stats_; }
  int num_buckets() const { return static_cast<int>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> grads;  // Indices into the grads vector.
    torch::Tensor buffer;       // Flat float32 (plus the stop flag in the last bucket).
  };
  absl::Status BuildBuckets(const std::vector<torch::Tensor>& grads);

  Collective* collective_;
  int64_t bucket_bytes_;
  const std::atomic<bool>* external_stop_;
  std::vector<Bucket> buckets_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> stop_agreed_{false};
  ReducerStats stats_;
};

}  // namespace ddlm

#endif  // DDLM_WORKER_GRADIENT_REDUCER_H_
