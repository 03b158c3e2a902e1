#include "worker/gradient_reducer.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace ddlm {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

absl::Status GradientAllReducer::BuildBuckets(const std::vector<torch::Tensor>& grads) {
  buckets_.clear();
  Bucket current;
  int64_t current_bytes = 0;
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined() || grads[i].scalar_type() != torch::kFloat32) {
      return absl::InvalidArgumentError(
          absl::StrCat("gradient ", i, " is undefined or not float32; cannot all-reduce it"));
    }
    current.grads.push_back(i);
    current_bytes += grads[i].numel() * 4;
    if (current_bytes >= bucket_bytes_) {
      buckets_.push_back(std::move(current));
      current = Bucket();
      current_bytes = 0;
    }
  }
  if (!current.grads.empty() || buckets_.empty()) buckets_.push_back(std::move(current));
  for (size_t b = 0; b < buckets_.size(); ++b) {
    int64_t numel = 0;
    for (size_t i : buckets_[b].grads) numel += grads[i].numel();
    if (b + 1 == buckets_.size()) numel += 1;  // The stop flag.
    buckets_[b].buffer = torch::empty({numel}, torch::TensorOptions().dtype(torch::kFloat32).device(grads.empty() ? torch::kCPU : grads[0].device()));
  }
  return absl::OkStatus();
}

absl::Status GradientAllReducer::Reduce(const std::vector<torch::Tensor>& grads) {
  if (buckets_.empty()) {
    if (absl::Status s = BuildBuckets(grads); !s.ok()) return s;
  }
  ++stats_.calls;
  const float world = static_cast<float>(collective_->world_size());
  torch::NoGradGuard no_grad;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    auto start = std::chrono::steady_clock::now();
    int64_t offset = 0;
    for (size_t i : bucket.grads) {
      const int64_t n = grads[i].numel();
      bucket.buffer.narrow(0, offset, n).copy_(grads[i].reshape({-1}));
      offset += n;
    }
    const bool last = b + 1 == buckets_.size();
    if (last) bucket.buffer[offset].fill_(stop_requested_.load() || (external_stop_ != nullptr && external_stop_->load()) ? 1.0f : 0.0f);
    stats_.pack_seconds += SecondsSince(start);

    start = std::chrono::steady_clock::now();
    if (collective_->world_size() > 1) {
      if (absl::Status s = collective_->AllReduceSum(bucket.buffer); !s.ok()) return s;
      ++stats_.collectives;
      stats_.bytes += bucket.buffer.numel() * 4;
    }
    stats_.allreduce_seconds += SecondsSince(start);

    start = std::chrono::steady_clock::now();
    if (collective_->world_size() > 1) bucket.buffer.div_(world);
    offset = 0;
    for (size_t i : bucket.grads) {
      const int64_t n = grads[i].numel();
      grads[i].copy_(bucket.buffer.narrow(0, offset, n).view(grads[i].sizes()));
      offset += n;
    }
    if (last && bucket.buffer[offset].item<float>() > 0) stop_agreed_ = true;
    stats_.pack_seconds += SecondsSince(start);
  }
  return absl::OkStatus();
}

}  // namespace ddlm
