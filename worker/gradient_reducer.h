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
// Overlap (optional, Attach): as in DDP, buckets are then filled in reverse parameter
// order, roughly the order backward produces gradients; a hook copies each gradient
// into its bucket as soon as backward computes it, and a communication thread
// all-reduces each bucket, strictly in bucket order on every rank, while backward goes
// on. Reduce then only completes the buckets of unused parameters, waits, and unpacks.
//
// Two communication hooks, after DDP's (both off by default; set before the first
// Reduce or Attach):
//   - set_wire_dtype(kBFloat16): buckets travel and are summed in bfloat16 (half the
//     bytes); they are rounded from, and averaged back in, float32, so every rank still
//     ends with the same float32 gradients. The sum loses bfloat16's precision (8
//     significant bits).
//   - set_row_sparse_gradients(positions): gradients that are zero outside the rows a
//     batch touched (the input embedding: LanguageModelImpl::RowSparseGradientParameters).
//     They stay out of the buckets; after them, each is reduced in three steps: the ranks
//     all-gather a byte per row saying whether their gradient's row is nonzero, every
//     rank takes the same union, and only those rows are all-reduced (the whole matrix
//     when the union is over half of it). Rows outside the union are zero on every rank,
//     so their average is the zero already there: the result equals the dense one.
//
// Devices: buckets live on the gradients' device. With a device collective (NCCL)
// they are summed there, on the collective's communication stream, ordered by CUDA
// events: the stream that filled a bucket records `ready`, the all-reduce waits for it
// on the device, records `done`, and the training stream waits for `done` before
// unpacking. With a host collective (Gloo) and device gradients (several ranks sharing
// one GPU), each bucket goes through a pinned host copy around the all-reduce.
//
// Threading: Reduce and the hooks run on the training thread (on a GPU, hooks run on
// LibTorch's autograd thread for that device while the training thread waits in
// backward); with Attach, one
// communication thread owned by the reducer uses the Collective during backward and
// Reduce (nobody else may use it then). RequestStop may be called from any thread.

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "common/training/device.h"
#include "worker/collectives/collective.h"

namespace ddlm {

struct ReducerStats {
  int64_t calls = 0;             // Reduce calls (training steps).
  int64_t collectives = 0;       // All-reduce calls.
  int64_t bytes = 0;             // Bytes all-reduced or all-gathered (per rank).
  int64_t rows_reduced = 0;      // Row-sparse gradients: rows all-reduced ...
  int64_t rows_total = 0;        // ... of this many (both summed over steps).
  double allreduce_seconds = 0;  // Inside the collective.
  double pack_seconds = 0;       // Packing, averaging and unpacking.
  // Overlap only: time Reduce spent after backward waiting for all-reduces and
  // unpacking (what the overlap did not hide).
  double exposed_seconds = 0;
};

class GradientAllReducer {
 public:
  static constexpr int64_t kDefaultBucketBytes = 25 << 20;

  // `external_stop`, if given (not owned; must outlive the reducer), is read like
  // RequestStop: setting it asks every rank to stop after the next step.
  explicit GradientAllReducer(Collective* collective /* not owned */, int64_t bucket_bytes = kDefaultBucketBytes,
                              const std::atomic<bool>* external_stop = nullptr)
      : collective_(collective), bucket_bytes_(bucket_bytes), external_stop_(external_stop) {}

  ~GradientAllReducer();

  // Turns on overlap for these parameters (model order, the order Reduce's `grads`
  // come in). Call once, before the first backward pass; no-op for one rank.
  absl::Status Attach(const std::vector<torch::Tensor>& params);

  // The communication hooks above. FAILED_PRECONDITION after the first Reduce or
  // Attach; INVALID_ARGUMENT for a dtype other than float32 and bfloat16 (and, at the
  // first Reduce or Attach, for a row-sparse position that is not a float32 matrix).
  absl::Status set_wire_dtype(torch::ScalarType dtype);
  absl::Status set_row_sparse_gradients(std::vector<size_t> positions);

  absl::Status Reduce(const std::vector<torch::Tensor>& grads);
  void RequestStop() { stop_requested_ = true; }
  // Pass to Trainer::TrainEpoch as its stop flag.
  const std::atomic<bool>* stop_agreed() const { return &stop_agreed_; }
  const ReducerStats& stats() const { return stats_; }
  int num_buckets() const { return static_cast<int>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> grads;     // Indices into the grads vector.
    std::vector<int64_t> offsets;  // Where each of them starts in `buffer`.
    torch::Tensor buffer;          // Flat float32 (plus the stop flag in the last bucket).
    // What travels, when not `buffer` itself: a host copy (the collective is on
    // another device) and/or a bfloat16 one (set_wire_dtype).
    torch::Tensor wire;
    std::unique_ptr<DeviceEvent> ready_event;  // Null on the CPU.
    std::unique_ptr<DeviceEvent> done_event;
    int pending = 0;     // Overlap: gradients not yet copied in this step.
    bool ready = false;  // Overlap: full, may be all-reduced.
    bool done = false;   // Overlap: all-reduced.
    absl::Status status;
  };
  // Buckets over `tensors` taken in `order`.
  absl::Status BuildBuckets(const std::vector<torch::Tensor>& tensors, const std::vector<size_t>& order);
  void WriteStopFlag(Bucket& bucket);
  // The bucket is full (on the calling thread's stream): marks it ready on the device.
  void MarkFilled(Bucket& bucket);
  // Sums the bucket over ranks (on whichever thread), ordered after MarkFilled.
  absl::Status AllReduceBucket(Bucket& bucket);
  // Overlap: copies one gradient into its bucket (from a hook or from Reduce).
  void Deposit(size_t index, const torch::Tensor& grad);
  void CommunicationLoop();
  absl::Status ReduceOverlapped(const std::vector<torch::Tensor>& grads);
  absl::Status Unpack(Bucket& bucket, const std::vector<torch::Tensor>& grads, bool last);
  // Averages one row-sparse gradient in place (training thread, no bucket in flight).
  absl::Status ReduceRows(const torch::Tensor& grad);
  absl::Status ReduceAllRows(const std::vector<torch::Tensor>& grads);
  // Sums `t` (float32, on any device) over ranks in the wire dtype, in place.
  absl::Status AllReduceOnWire(torch::Tensor& t);

  Collective* collective_;
  int64_t bucket_bytes_;
  const std::atomic<bool>* external_stop_;
  std::vector<Bucket> buckets_;
  torch::ScalarType wire_dtype_ = torch::kFloat32;
  std::vector<size_t> row_sparse_;  // Positions, sorted.
  // Overlap state. Bucket flags and `next_` are guarded by mu_.
  bool attached_ = false;
  std::vector<std::pair<size_t, size_t>> slot_;  // Gradient index -> (bucket, position).
  std::vector<bool> deposited_;                  // Per gradient, this step.
  std::mutex mu_;
  std::condition_variable changed_;
  bool shutting_down_ = false;
  std::thread comm_thread_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> stop_agreed_{false};
  ReducerStats stats_;
};

}  // namespace ddlm

#endif  // DDLM_WORKER_GRADIENT_REDUCER_H_
