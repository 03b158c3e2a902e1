#include "worker/gradient_reducer.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace ddlm {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

GradientAllReducer::~GradientAllReducer() {
  if (comm_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutting_down_ = true;
    }
    changed_.notify_all();
    comm_thread_.join();
  }
}

absl::Status GradientAllReducer::set_wire_dtype(torch::ScalarType dtype) {
  if (!buckets_.empty()) {
    return absl::FailedPreconditionError("set_wire_dtype after the first Reduce or Attach");
  }
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16) {
    return absl::InvalidArgumentError(
        absl::StrCat("all-reduce dtype ", c10::toString(dtype), ": expected Float or BFloat16"));
  }
  wire_dtype_ = dtype;
  return absl::OkStatus();
}

absl::Status GradientAllReducer::set_row_sparse_gradients(std::vector<size_t> positions) {
  if (!buckets_.empty()) {
    return absl::FailedPreconditionError("set_row_sparse_gradients after the first Reduce or Attach");
  }
  std::sort(positions.begin(), positions.end());
  positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
  row_sparse_ = std::move(positions);
  return absl::OkStatus();
}

absl::Status GradientAllReducer::BuildBuckets(const std::vector<torch::Tensor>& tensors,
                                              const std::vector<size_t>& order) {
  buckets_.clear();
  for (size_t i : row_sparse_) {
    if (i >= tensors.size() || !tensors[i].defined() || tensors[i].dim() != 2 ||
        tensors[i].scalar_type() != torch::kFloat32) {
      return absl::InvalidArgumentError(
          absl::StrCat("row-sparse gradient ", i, " is not a float32 matrix among ", tensors.size(), " gradients"));
    }
  }
  Bucket current;
  int64_t current_bytes = 0;
  for (size_t i : order) {
    if (std::binary_search(row_sparse_.begin(), row_sparse_.end(), i)) continue;
    if (!tensors[i].defined() || tensors[i].scalar_type() != torch::kFloat32) {
      return absl::InvalidArgumentError(
          absl::StrCat("gradient ", i, " is undefined or not float32; cannot all-reduce it"));
    }
    if (tensors[i].device() != tensors[order[0]].device()) {
      return absl::InvalidArgumentError(absl::StrCat("gradient ", i, " is on ", tensors[i].device().str(),
                                                     ", the first on ", tensors[order[0]].device().str()));
    }
    current.grads.push_back(i);
    current_bytes += tensors[i].numel() * 4;
    if (current_bytes >= bucket_bytes_) {
      buckets_.push_back(std::move(current));
      current = Bucket();
      current_bytes = 0;
    }
  }
  if (!current.grads.empty() || buckets_.empty()) buckets_.push_back(std::move(current));
  slot_.assign(tensors.size(), {0, 0});
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    int64_t numel = 0;
    for (size_t k = 0; k < bucket.grads.size(); ++k) {
      bucket.offsets.push_back(numel);
      slot_[bucket.grads[k]] = {b, k};
      numel += tensors[bucket.grads[k]].numel();
    }
    if (b + 1 == buckets_.size()) numel += 1;  // The stop flag.
    const torch::Device device = bucket.grads.empty() ? torch::Device(torch::kCPU) : tensors[bucket.grads[0]].device();
    bucket.buffer = torch::empty({numel}, torch::TensorOptions(device).dtype(torch::kFloat32));
    if (device != collective_->device() && collective_->world_size() > 1) {
      if (collective_->device().is_cuda()) {
        return absl::InvalidArgumentError(
            absl::StrCat("gradients are on ", device.str(), ", the ", "collective on ", collective_->device().str()));
      }
      bucket.wire = torch::empty({numel}, torch::TensorOptions().dtype(wire_dtype_).pinned_memory(device.is_cuda()));
    } else if (wire_dtype_ != torch::kFloat32 && collective_->world_size() > 1) {
      bucket.wire = torch::empty({numel}, torch::TensorOptions(device).dtype(wire_dtype_));
    }
    bucket.ready_event = DeviceEvent::Create(device);
    bucket.done_event = DeviceEvent::Create(device);
    bucket.pending = static_cast<int>(bucket.grads.size());
  }
  return absl::OkStatus();
}

void GradientAllReducer::WriteStopFlag(Bucket& bucket) {
  const bool stop = stop_requested_.load() || (external_stop_ != nullptr && external_stop_->load());
  bucket.buffer[bucket.buffer.numel() - 1].fill_(stop ? 1.0f : 0.0f);
}

void GradientAllReducer::MarkFilled(Bucket& bucket) {
  if (bucket.ready_event) bucket.ready_event->RecordOnCurrentStream();
}

absl::Status GradientAllReducer::AllReduceBucket(Bucket& bucket) {
  if (!bucket.wire.defined()) {
    return collective_->AllReduceSumOrdered(bucket.buffer, bucket.ready_event.get(), bucket.done_event.get());
  }
  // Through the wire copy (host and/or bfloat16). Both copies are synchronous on this
  // thread's stream, which first waits for the filling stream.
  try {
    if (bucket.ready_event) bucket.ready_event->WaitOnCurrentStream();
    bucket.wire.copy_(bucket.buffer);
    absl::Status status = collective_->AllReduceSum(bucket.wire);
    if (!status.ok()) return status;
    bucket.buffer.copy_(bucket.wire);
    if (bucket.done_event) bucket.done_event->RecordOnCurrentStream();
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("copying a gradient bucket for the all-reduce: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status GradientAllReducer::AllReduceOnWire(torch::Tensor& t) {
  if (t.device() == collective_->device() && wire_dtype_ == torch::kFloat32) {
    return collective_->AllReduceSum(t);
  }
  torch::Tensor wire = t.to(collective_->device(), wire_dtype_);
  if (absl::Status s = collective_->AllReduceSum(wire); !s.ok()) return s;
  t.copy_(wire);
  return absl::OkStatus();
}

absl::Status GradientAllReducer::ReduceRows(const torch::Tensor& grad) {
  const int64_t rows = grad.size(0);
  const float world = static_cast<float>(collective_->world_size());
  try {
    // Which rows some rank touched: the same union on every rank.
    torch::Tensor mine = grad.ne(0).any(1).to(collective_->device(), torch::kUInt8);
    absl::StatusOr<torch::Tensor> all = collective_->AllGather(mine);
    if (!all.ok()) return all.status();
    stats_.bytes += mine.numel();
    torch::Tensor touched = all->amax(0).nonzero().view({-1}).to(grad.device());
    const int64_t n = touched.numel();
    stats_.rows_total += rows;
    if (2 * n > rows) {
      // Most rows: the whole matrix, as one contiguous all-reduce.
      torch::Tensor flat = grad.contiguous();
      if (absl::Status s = AllReduceOnWire(flat); !s.ok()) return s;
      flat.div_(world);
      if (!flat.is_same(grad)) grad.copy_(flat);
      stats_.rows_reduced += rows;
      stats_.bytes += grad.numel() * c10::elementSize(wire_dtype_);
    } else if (n > 0) {
      torch::Tensor part = grad.index_select(0, touched);
      if (absl::Status s = AllReduceOnWire(part); !s.ok()) return s;
      grad.index_copy_(0, touched, part.div_(world));
      stats_.rows_reduced += n;
      stats_.bytes += part.numel() * c10::elementSize(wire_dtype_);
    }
    stats_.collectives += n > 0 ? 2 : 1;
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("all-reducing the touched rows of a gradient: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status GradientAllReducer::ReduceAllRows(const std::vector<torch::Tensor>& grads) {
  if (collective_->world_size() == 1) return absl::OkStatus();
  const auto start = std::chrono::steady_clock::now();
  for (size_t i : row_sparse_) {
    if (absl::Status s = ReduceRows(grads[i]); !s.ok()) return s;
  }
  stats_.allreduce_seconds += SecondsSince(start);
  return absl::OkStatus();
}

absl::Status GradientAllReducer::Unpack(Bucket& bucket, const std::vector<torch::Tensor>& grads, bool last) {
  const auto start = std::chrono::steady_clock::now();
  if (bucket.done_event && collective_->world_size() > 1) bucket.done_event->WaitOnCurrentStream();
  if (collective_->world_size() > 1) bucket.buffer.div_(static_cast<float>(collective_->world_size()));
  for (size_t k = 0; k < bucket.grads.size(); ++k) {
    const torch::Tensor& g = grads[bucket.grads[k]];
    g.copy_(bucket.buffer.narrow(0, bucket.offsets[k], g.numel()).view(g.sizes()));
  }
  if (last && bucket.buffer[bucket.buffer.numel() - 1].item<float>() > 0) stop_agreed_ = true;
  stats_.pack_seconds += SecondsSince(start);
  return absl::OkStatus();
}

absl::Status GradientAllReducer::Reduce(const std::vector<torch::Tensor>& grads) {
  torch::NoGradGuard no_grad;
  if (attached_) return ReduceOverlapped(grads);
  if (buckets_.empty()) {
    std::vector<size_t> order(grads.size());
    std::iota(order.begin(), order.end(), 0);
    if (absl::Status s = BuildBuckets(grads, order); !s.ok()) return s;
  }
  ++stats_.calls;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    auto start = std::chrono::steady_clock::now();
    for (size_t k = 0; k < bucket.grads.size(); ++k) {
      const torch::Tensor& g = grads[bucket.grads[k]];
      bucket.buffer.narrow(0, bucket.offsets[k], g.numel()).copy_(g.reshape({-1}));
    }
    const bool last = b + 1 == buckets_.size();
    if (last) WriteStopFlag(bucket);
    MarkFilled(bucket);
    stats_.pack_seconds += SecondsSince(start);

    start = std::chrono::steady_clock::now();
    if (collective_->world_size() > 1) {
      if (absl::Status s = AllReduceBucket(bucket); !s.ok()) return s;
      ++stats_.collectives;
      stats_.bytes += bucket.buffer.numel() * c10::elementSize(wire_dtype_);
    }
    stats_.allreduce_seconds += SecondsSince(start);
    if (absl::Status s = Unpack(bucket, grads, last); !s.ok()) return s;
  }
  return ReduceAllRows(grads);
}

// ---------------------------------------------------------------- overlap

absl::Status GradientAllReducer::Attach(const std::vector<torch::Tensor>& params) {
  if (collective_->world_size() == 1 || attached_) return absl::OkStatus();
  std::vector<size_t> order(params.size());
  std::iota(order.rbegin(), order.rend(), 0);  // Backward produces the last ones first.
  if (absl::Status s = BuildBuckets(params, order); !s.ok()) return s;
  deposited_.assign(params.size(), false);
  for (size_t i : row_sparse_) deposited_[i] = true;  // Reduced after the buckets.
  for (size_t i = 0; i < params.size(); ++i) {
    if (std::binary_search(row_sparse_.begin(), row_sparse_.end(), i)) continue;
    // Runs on the thread running backward, once per step with the parameter's whole
    // gradient (uses of one parameter are summed before it).
    params[i].register_hook([this, i](const torch::Tensor& grad) { Deposit(i, grad); });
  }
  attached_ = true;
  comm_thread_ = std::thread([this] { CommunicationLoop(); });
  return absl::OkStatus();
}

void GradientAllReducer::Deposit(size_t index, const torch::Tensor& grad) {
  const auto start = std::chrono::steady_clock::now();
  auto [b, k] = slot_[index];
  Bucket& bucket = buckets_[b];
  {
    torch::NoGradGuard no_grad;
    bucket.buffer.narrow(0, bucket.offsets[k], grad.numel()).copy_(grad.reshape({-1}));
  }
  deposited_[index] = true;
  bool now_ready = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (--bucket.pending == 0) {
      if (b + 1 == buckets_.size()) WriteStopFlag(bucket);
      MarkFilled(bucket);
      bucket.ready = true;
      now_ready = true;
    }
  }
  if (now_ready) changed_.notify_all();
  stats_.pack_seconds += SecondsSince(start);
}

void GradientAllReducer::CommunicationLoop() {
  // One step per pass: every bucket, in bucket order (the same on every rank).
  while (true) {
    for (size_t b = 0; b < buckets_.size(); ++b) {
      Bucket& bucket = buckets_[b];
      {
        std::unique_lock<std::mutex> lock(mu_);
        changed_.wait(lock, [&] { return shutting_down_ || bucket.ready; });
        if (shutting_down_) return;
      }
      const auto start = std::chrono::steady_clock::now();
      absl::Status status = AllReduceBucket(bucket);
      const double seconds = SecondsSince(start);
      {
        std::lock_guard<std::mutex> lock(mu_);
        bucket.status = status;
        bucket.done = true;
        stats_.allreduce_seconds += seconds;
        ++stats_.collectives;
        stats_.bytes += bucket.buffer.numel() * c10::elementSize(wire_dtype_);
      }
      changed_.notify_all();
    }
    // Wait for Reduce to reset the buckets before the next step.
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return shutting_down_ || !buckets_.back().done; });
    if (shutting_down_) return;
  }
}

absl::Status GradientAllReducer::ReduceOverlapped(const std::vector<torch::Tensor>& grads) {
  ++stats_.calls;
  // Gradients no hook delivered (parameters unused this step: the trainer passes zeros).
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!deposited_[i]) Deposit(i, grads[i]);
  }
  absl::Status status;
  const auto wait_start = std::chrono::steady_clock::now();
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [&] { return bucket.done; });
    }
    if (status.ok()) status = bucket.status;
    if (status.ok()) status = Unpack(bucket, grads, b + 1 == buckets_.size());
  }
  // Every bucket is done: the communication thread waits for the reset below and leaves
  // the collective to this thread.
  if (status.ok()) status = ReduceAllRows(grads);
  stats_.exposed_seconds += SecondsSince(wait_start);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Bucket& bucket : buckets_) {
      bucket.pending = static_cast<int>(bucket.grads.size());
      bucket.ready = false;
      bucket.done = false;
      bucket.status = absl::OkStatus();
    }
  }
  changed_.notify_all();
  deposited_.assign(deposited_.size(), false);
  for (size_t i : row_sparse_) deposited_[i] = true;
  return status;
}

}  // namespace ddlm
