#include "worker/collectives/gloo_collective.h"

#include <glog/logging.h>
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/attr.h>
#include <gloo/transport/tcp/device.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/status_macros.h"
#include "worker/collectives/collective_checks.h"

namespace ddlm {
namespace {

// Carries a KeyValueStore error through Gloo's rendezvous, which only knows exceptions,
// so that the status code (DEADLINE_EXCEEDED for a peer that never published) survives.
// It derives from gloo::IoException, the type Gloo's own stores throw.
class StoreError : public gloo::IoException {
 public:
  explicit StoreError(absl::Status status) : gloo::IoException(status.ToString()), status_(std::move(status)) {}
  const absl::Status& status() const { return status_; }

 private:
  absl::Status status_;
};

// gloo::rendezvous::Store on top of a KeyValueStore (ddlm's PrefixStore gives the keys
// their prefix; not gloo::rendezvous::PrefixStore, whose wait(keys) substitutes Gloo's
// fixed 30 s default for our timeout).
//
// Gloo's stores block in get() until the key exists, and connectFullMesh relies on it
// (it reads the lower ranks' host names without waiting first), so get() waits too.
//
// Threading: used only by the thread inside CreateGlooCollective.
class KeyValueStoreAdapter : public gloo::rendezvous::Store {
 public:
  KeyValueStoreAdapter(KeyValueStore* store, absl::Duration timeout) : store_(store), timeout_(timeout) {}

  void set(const std::string& key, const std::vector<char>& data) override {
    Check(store_->Set(key, std::string(data.begin(), data.end())));
  }

  std::vector<char> get(const std::string& key) override {
    Check(store_->Wait({key}, timeout_));
    absl::StatusOr<std::string> value = store_->Get(key);
    Check(value.status());
    return std::vector<char>(value->begin(), value->end());
  }

  void wait(const std::vector<std::string>& keys) override { Check(store_->Wait(keys, timeout_)); }

  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    Check(store_->Wait(keys, absl::FromChrono(timeout)));
  }

 private:
  static void Check(const absl::Status& status) {
    if (!status.ok()) throw StoreError(status);
  }

  KeyValueStore* const store_;  // Not owned; a PrefixStore of the attempt's "gloo/" keys.
  const absl::Duration timeout_;
};

// Runs `fn`, turning whatever Gloo (or LibTorch) throws into a status naming `op`.
// Gloo has no timeout exception type: its timeouts are IoExceptions whose messages say
// "timeout" or "Timed out", so those become DEADLINE_EXCEEDED and the rest UNAVAILABLE.
template <typename Fn>
absl::Status RunGloo(absl::string_view op, Fn&& fn) {
  try {
    fn();
    return absl::OkStatus();
  } catch (const StoreError& e) {
    return absl::Status(e.status().code(), absl::StrCat("gloo ", op, ": rendezvous store: ", e.status().message()));
  } catch (const gloo::IoException& e) {
    const std::string what = absl::AsciiStrToLower(e.what());
    const bool timed_out = absl::StrContains(what, "timeout") || absl::StrContains(what, "timed out");
    const std::string message = absl::StrCat("gloo ", op, ": ", e.what());
    return timed_out ? absl::DeadlineExceededError(message) : absl::UnavailableError(message);
  } catch (const gloo::Exception& e) {
    return absl::InternalError(absl::StrCat("gloo ", op, ": ", e.what()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("gloo ", op, ": ", e.what()));
  }
}

void SumFloats(void* out, const void* a, const void* b, size_t n) {
  float* o = static_cast<float*>(out);
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  for (size_t i = 0; i < n; ++i) o[i] = x[i] + y[i];
}

// bfloat16 sums: each pair in float32, rounded to the nearest bfloat16 (even on ties).
void SumBfloat16s(void* out, const void* a, const void* b, size_t n) {
  c10::BFloat16* o = static_cast<c10::BFloat16*>(out);
  const c10::BFloat16* x = static_cast<const c10::BFloat16*>(a);
  const c10::BFloat16* y = static_cast<const c10::BFloat16*>(b);
  for (size_t i = 0; i < n; ++i) {
    o[i] = c10::BFloat16(static_cast<float>(x[i]) + static_cast<float>(y[i]));
  }
}

// Threading: one thread at a time (collective.h).
class GlooCollective : public Collective {
 public:
  GlooCollective(std::shared_ptr<gloo::rendezvous::Context> context, std::string log_prefix)
      : rank_(context->rank),
        world_size_(context->size),
        context_(std::move(context)),
        log_prefix_(std::move(log_prefix)) {}

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  torch::Device device() const override { return torch::kCPU; }

  absl::Status AllReduceSum(torch::Tensor& tensor) override {
    constexpr absl::string_view kOp = "AllReduceSum";
    DDLM_RETURN_IF_ERROR(CheckUsable(kOp));
    DDLM_RETURN_IF_ERROR(CheckTensor(absl::StrCat("gloo ", kOp), tensor, torch::kCPU));
    const bool bf16 = tensor.scalar_type() == torch::kBFloat16;
    if (tensor.scalar_type() != torch::kFloat32 && !bf16) {
      return absl::InvalidArgumentError(absl::StrCat("gloo ", kOp, ": tensor is ", c10::toString(tensor.scalar_type()),
                                                     ", expected Float or BFloat16"));
    }
    if (tensor.numel() == 0) return absl::OkStatus();
    return Run(kOp, [&] {
      gloo::AllreduceOptions opts(context_);
      if (bf16) {
        // Gloo only moves bytes of the element size; the sum is SumBfloat16s.
        opts.setOutput(static_cast<uint16_t*>(tensor.data_ptr()), static_cast<size_t>(tensor.numel()));
        opts.setReduceFunction(&SumBfloat16s);
      } else {
        opts.setOutput(tensor.data_ptr<float>(), static_cast<size_t>(tensor.numel()));
        opts.setReduceFunction(&SumFloats);
      }
      opts.setTag(NextTag());
      gloo::allreduce(opts);
    });
  }

  absl::Status Broadcast(torch::Tensor& tensor, int root) override {
    constexpr absl::string_view kOp = "Broadcast";
    DDLM_RETURN_IF_ERROR(CheckUsable(kOp));
    DDLM_RETURN_IF_ERROR(CheckTensor(absl::StrCat("gloo ", kOp), tensor, torch::kCPU));
    DDLM_RETURN_IF_ERROR(CheckRoot(absl::StrCat("gloo ", kOp), root, world_size_));
    if (tensor.nbytes() == 0) return absl::OkStatus();
    return Run(kOp, [&] {
      // Only an output buffer: the root sends from it, the others receive into it.
      gloo::BroadcastOptions opts(context_);
      opts.setOutput(static_cast<uint8_t*>(tensor.data_ptr()), tensor.nbytes());
      opts.setRoot(root);
      opts.setTag(NextTag());
      gloo::broadcast(opts);
    });
  }

  absl::StatusOr<torch::Tensor> AllGather(const torch::Tensor& tensor) override {
    constexpr absl::string_view kOp = "AllGather";
    DDLM_RETURN_IF_ERROR(CheckUsable(kOp));
    DDLM_RETURN_IF_ERROR(CheckTensor(absl::StrCat("gloo ", kOp), tensor, torch::kCPU));
    std::vector<int64_t> sizes = {world_size_};
    sizes.insert(sizes.end(), tensor.sizes().begin(), tensor.sizes().end());
    torch::Tensor output;
    absl::Status status = Run(kOp, [&] {
      output = torch::empty(sizes, tensor.options());
      if (tensor.nbytes() == 0) return;
      gloo::AllgatherOptions opts(context_);
      opts.setInput(static_cast<uint8_t*>(tensor.data_ptr()), tensor.nbytes());
      opts.setOutput(static_cast<uint8_t*>(output.data_ptr()), output.nbytes());
      opts.setTag(NextTag());
      gloo::allgather(opts);
    });
    if (!status.ok()) return status;
    return output;
  }

  absl::Status Barrier() override {
    constexpr absl::string_view kOp = "Barrier";
    DDLM_RETURN_IF_ERROR(CheckUsable(kOp));
    return Run(kOp, [&] {
      gloo::BarrierOptions opts(context_);
      opts.setTag(NextTag());
      gloo::barrier(opts);
    });
  }

 private:
  absl::Status CheckUsable(absl::string_view op) const {
    if (failure_.ok()) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("gloo ", op, ": an earlier operation failed, build a new collective: ", failure_.message()));
  }

  // Runs a Gloo operation. Its first failure makes the collective unusable and closes
  // every connection, so that peers blocked in the same operation fail now (connection
  // closed) rather than at their timeout.
  template <typename Fn>
  absl::Status Run(absl::string_view op, Fn&& fn) {
    absl::Status status = RunGloo(op, std::forward<Fn>(fn));
    if (!status.ok()) {
      LOG(WARNING) << log_prefix_ << status;
      failure_ = status;
      // Destroying the context closes the sockets and stops the device's I/O thread.
      context_.reset();
    }
    return status;
  }

  // Every rank issues the same operations in the same order, so the tags match.
  uint32_t NextTag() { return next_tag_++; }

  const int rank_;
  const int world_size_;
  std::shared_ptr<gloo::rendezvous::Context> context_;  // Null after a failure.
  const std::string log_prefix_;
  uint32_t next_tag_ = 0;
  absl::Status failure_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Collective>> CreateGlooCollective(const CollectiveOptions& options,
                                                                 KeyValueStore* store) {
  DDLM_RETURN_IF_ERROR(ValidateCollectiveOptions(options));
  if (store == nullptr) return absl::InvalidArgumentError("gloo rendezvous: store is null");
  const std::string log_prefix =
      absl::StrCat("[gloo ", options.store_prefix, " rank ", options.rank, "/", options.world_size, "] ");

  auto context = std::make_shared<gloo::rendezvous::Context>(options.rank, options.world_size);
  absl::Status status = RunGloo("rendezvous", [&] {
    context->setTimeout(absl::ToChronoMilliseconds(options.timeout));
    gloo::transport::tcp::attr attr;
    attr.hostname = options.host;
    std::shared_ptr<gloo::transport::Device> device = gloo::transport::tcp::CreateDevice(attr);
    PrefixStore gloo_keys(absl::StrCat(options.store_prefix, "gloo/"), store);
    KeyValueStoreAdapter adapter(&gloo_keys, options.timeout);
    context->connectFullMesh(adapter, device);
  });
  if (!status.ok()) {
    LOG(WARNING) << log_prefix << status;
    return status;
  }
  VLOG(1) << log_prefix << "connected on " << options.host;
  return std::unique_ptr<Collective>(new GlooCollective(std::move(context), log_prefix));
}

}  // namespace ddlm
