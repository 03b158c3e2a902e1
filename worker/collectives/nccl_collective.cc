// The NCCL Collective, compiled only with --config=cuda (see nccl_collective.h).

#include "worker/collectives/nccl_collective.h"

#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <glog/logging.h>
#include <nccl.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/base/status_macros.h"
#include "worker/collectives/collective_checks.h"

namespace ddlm {
namespace {

absl::Status CudaCheck(absl::string_view op, absl::string_view call, cudaError_t error) {
  if (error == cudaSuccess) return absl::OkStatus();
  absl::StatusCode code = absl::StatusCode::kInternal;
  if (error == cudaErrorInvalidDevice) code = absl::StatusCode::kInvalidArgument;
  if (error == cudaErrorNoDevice || error == cudaErrorInsufficientDriver) {
    code = absl::StatusCode::kFailedPrecondition;
  }
  return absl::Status(code, absl::StrCat("nccl ", op, ": ", call, ": ", cudaGetErrorString(error)));
}

absl::Status NcclCheck(absl::string_view op, absl::string_view call, ncclResult_t result) {
  if (result == ncclSuccess) return absl::OkStatus();
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (result) {
    case ncclInvalidArgument: code = absl::StatusCode::kInvalidArgument; break;
    case ncclInvalidUsage: code = absl::StatusCode::kFailedPrecondition; break;
    case ncclSystemError:
    case ncclRemoteError: code = absl::StatusCode::kUnavailable; break;
    default: break;
  }
  return absl::Status(code, absl::StrCat("nccl ", op, ": ", call, ": ", ncclGetErrorString(result)));
}

// Threading: one thread at a time (collective.h).
class NcclCollective : public Collective {
 public:
  NcclCollective(const CollectiveOptions& options, int cuda_device)
      : rank_(options.rank),
        world_size_(options.world_size),
        cuda_device_(cuda_device),
        device_(torch::kCUDA, static_cast<torch::DeviceIndex>(cuda_device)),
        timeout_(options.timeout),
        log_prefix_(absl::StrCat("[nccl ", options.store_prefix, " rank ", options.rank, "/", options.world_size,
                                 " cuda:", cuda_device, "] ")) {}

  ~NcclCollective() override {
    // Best effort: errors here have nowhere to go.
    cudaSetDevice(cuda_device_);
    if (caller_ != nullptr) cudaEventDestroy(caller_);
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    if (scratch_ != nullptr) cudaFree(scratch_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  // Creates the stream and the barrier's scratch float, exchanges the unique id and
  // joins the communicator.
  absl::Status Init(KeyValueStore* store, const std::string& store_prefix) {
    constexpr absl::string_view kOp = "rendezvous";
    DDLM_RETURN_IF_ERROR(CudaCheck(kOp, "cudaSetDevice", cudaSetDevice(cuda_device_)));
    // Non-blocking: nothing orders it against other streams implicitly (not even the
    // legacy default stream); every operation is ordered by CUDA events.
    DDLM_RETURN_IF_ERROR(
        CudaCheck(kOp, "cudaStreamCreateWithFlags", cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)));
    DDLM_RETURN_IF_ERROR(
        CudaCheck(kOp, "cudaEventCreateWithFlags", cudaEventCreateWithFlags(&caller_, cudaEventDisableTiming)));
    DDLM_RETURN_IF_ERROR(CudaCheck(kOp, "cudaMalloc", cudaMalloc(reinterpret_cast<void**>(&scratch_), sizeof(float))));
    DDLM_RETURN_IF_ERROR(CudaCheck(kOp, "cudaMemset", cudaMemset(scratch_, 0, sizeof(float))));

    PrefixStore keys(store_prefix, store);  // This attempt's keys.
    const std::string key = "nccl_unique_id";
    ncclUniqueId id;
    if (rank_ == 0) {
      DDLM_RETURN_IF_ERROR(NcclCheck(kOp, "ncclGetUniqueId", ncclGetUniqueId(&id)));
      absl::Status status = keys.Set(key, std::string(id.internal, sizeof(id.internal)));
      if (!status.ok()) {
        return absl::Status(status.code(), absl::StrCat("nccl rendezvous: rendezvous store: ", status.message()));
      }
    } else {
      absl::Status status = keys.Wait({key}, timeout_);
      absl::StatusOr<std::string> value = status.ok() ? keys.Get(key) : absl::StatusOr<std::string>(status);
      if (!value.ok()) {
        return absl::Status(value.status().code(),
                            absl::StrCat("nccl rendezvous: rendezvous store: ", value.status().message()));
      }
      if (value->size() != sizeof(id.internal)) {
        return absl::DataLossError(absl::StrCat("nccl rendezvous: key '", keys.prefix(), key, "' holds ", value->size(),
                                                " bytes, expected an NCCL id of ", sizeof(id.internal)));
      }
      std::memcpy(id.internal, value->data(), sizeof(id.internal));
    }
    ncclComm_t comm = nullptr;
    const ncclResult_t result = ncclCommInitRank(&comm, world_size_, id, rank_);
    if (result != ncclSuccess) {
      // A half-built communicator still holds threads and device memory.
      if (comm != nullptr) ncclCommAbort(comm);
      return NcclCheck(kOp, "ncclCommInitRank", result);
    }
    comm_ = comm;
    VLOG(1) << log_prefix_ << "communicator ready";
    return absl::OkStatus();
  }

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  torch::Device device() const override { return device_; }

  absl::Status AllReduceSum(torch::Tensor& tensor) override { return AllReduceSumOrdered(tensor, nullptr, nullptr); }

  absl::Status AllReduceSumOrdered(torch::Tensor& tensor, DeviceEvent* ready, DeviceEvent* done) override {
    constexpr absl::string_view kOp = "AllReduceSum";
    DDLM_RETURN_IF_ERROR(CheckUsable(kOp));
    DDLM_RETURN_IF_ERROR(CheckTensor(absl::StrCat("nccl ", kOp), tensor, device_));
    const bool bf16 = tensor.scalar_type() == torch::kBFloat16;
    if (tensor.scalar_type() != torch::kFloat32 && !bf16) {
      return absl::InvalidArgumentError(absl::StrCat("nccl ", kOp, ": tensor is ", c10::toString(tensor.scalar_type()),
                                                     ", expected Float or BFloat16"));
    }
    if (tensor.numel() == 0) return absl::OkStatus();
    const ncclDataType_t type = bf16 ? ncclBfloat16 : ncclFloat32;
    void* data = tensor.data_ptr();
    const size_t count = static_cast<size_t>(tensor.numel());
    return Run(kOp, ready, [&] {
      DDLM_RETURN_IF_ERROR(
          NcclCheck(kOp, "ncclAllReduce", ncclAllReduce(data, data, count, type, ncclSum, comm_, stream_)));
      if (done == nullptr) return absl::OkStatus();
      return CudaCheck(kOp, "cudaEventRecord",
                       cudaEventRecord(static_cast<cudaEvent_t>(done->native_handle()), stream_));
    });
  }

  absl::Status Broadcast(torch::Tensor& tensor, int root) override {
    constexpr absl::string_view kOp = "Broadcast";
    DDLM_RETURN_IF_ERROR(CheckUsable(kOp));
    DDLM_RETURN_IF_ERROR(CheckTensor(absl::StrCat("nccl ", kOp), tensor, device_));
    DDLM_RETURN_IF_ERROR(CheckRoot(absl::StrCat("nccl ", kOp), root, world_size_));
    if (tensor.nbytes() == 0) return absl::OkStatus();
    void* data = tensor.data_ptr();
    const size_t bytes = tensor.nbytes();
    return Run(kOp, nullptr, [&] {
      return NcclCheck(kOp, "ncclBroadcast", ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_));
    });
  }

  absl::StatusOr<torch::Tensor> AllGather(const torch::Tensor& tensor) override {
    constexpr absl::string_view kOp = "AllGather";
    DDLM_RETURN_IF_ERROR(CheckUsable(kOp));
    DDLM_RETURN_IF_ERROR(CheckTensor(absl::StrCat("nccl ", kOp), tensor, device_));
    std::vector<int64_t> sizes = {world_size_};
    sizes.insert(sizes.end(), tensor.sizes().begin(), tensor.sizes().end());
    torch::Tensor output;
    try {
      output = torch::empty(sizes, tensor.options());
    } catch (const std::exception& e) {
      return absl::ResourceExhaustedError(absl::StrCat("nccl ", kOp, ": allocating the output: ", e.what()));
    }
    if (tensor.nbytes() == 0) return output;
    const void* in = tensor.data_ptr();
    void* out = output.data_ptr();
    const size_t bytes = tensor.nbytes();
    DDLM_RETURN_IF_ERROR(Run(kOp, nullptr, [&] {
      return NcclCheck(kOp, "ncclAllGather", ncclAllGather(in, out, bytes, ncclUint8, comm_, stream_));
    }));
    return output;
  }

  absl::Status Barrier() override {
    constexpr absl::string_view kOp = "Barrier";
    DDLM_RETURN_IF_ERROR(CheckUsable(kOp));
    // NCCL has no barrier: an all-reduce of one float returns on a rank only once every
    // rank has joined it.
    return Run(kOp, nullptr, [&] {
      return NcclCheck(kOp, "ncclAllReduce",
                       ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_, stream_));
    });
  }

 private:
  absl::Status CheckUsable(absl::string_view op) const {
    if (failure_.ok()) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("nccl ", op, ": an earlier operation failed, build a new collective: ", failure_.message()));
  }

  // Orders stream_ after `ready` (or, without one, after the work queued so far on the
  // calling thread's current stream), enqueues an operation on stream_ and waits for
  // it. The first failure aborts the communicator (which also ends the operation's
  // kernels) and makes the collective unusable.
  template <typename Enqueue>
  absl::Status Run(absl::string_view op, DeviceEvent* ready, Enqueue&& enqueue) {
    absl::Status status = CudaCheck(op, "cudaSetDevice", cudaSetDevice(cuda_device_));
    cudaEvent_t after = caller_;
    if (ready != nullptr) {
      after = static_cast<cudaEvent_t>(ready->native_handle());
    } else if (status.ok()) {
      status = CudaCheck(op, "cudaEventRecord",
                         cudaEventRecord(caller_, c10::cuda::getCurrentCUDAStream(cuda_device_).stream()));
    }
    if (status.ok()) status = CudaCheck(op, "cudaStreamWaitEvent", cudaStreamWaitEvent(stream_, after, 0));
    if (status.ok()) status = enqueue();
    if (status.ok()) status = WaitForStream(op);
    if (!status.ok()) {
      LOG(WARNING) << log_prefix_ << status;
      failure_ = status;
      if (comm_ != nullptr) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
      }
    }
    return status;
  }

  // cudaStreamSynchronize would wait forever for a peer that is gone; polling keeps the
  // timeout enforceable and lets NCCL's asynchronous errors surface.
  absl::Status WaitForStream(absl::string_view op) {
    const absl::Time deadline = absl::Now() + timeout_;
    while (true) {
      const cudaError_t query = cudaStreamQuery(stream_);
      if (query == cudaSuccess) return absl::OkStatus();
      if (query != cudaErrorNotReady) return CudaCheck(op, "cudaStreamQuery", query);
      ncclResult_t async_error = ncclSuccess;
      DDLM_RETURN_IF_ERROR(NcclCheck(op, "ncclCommGetAsyncError", ncclCommGetAsyncError(comm_, &async_error)));
      if (async_error != ncclSuccess && async_error != ncclInProgress) {
        return NcclCheck(op, "asynchronous error", async_error);
      }
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat("nccl ", op, ": not finished after ",
                                                        absl::FormatDuration(timeout_),
                                                        " (a peer is gone or did not join the operation)"));
      }
      // Short enough to add little latency to an operation, long enough not to keep a
      // core spinning.
      absl::SleepFor(absl::Microseconds(50));
    }
  }

  const int rank_;
  const int world_size_;
  const int cuda_device_;
  const torch::Device device_;
  const absl::Duration timeout_;
  const std::string log_prefix_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t caller_ = nullptr;  // Marks the caller's stream for operations without `ready`.
  float* scratch_ = nullptr;      // Device memory: the barrier's all-reduce operand.
  ncclComm_t comm_ = nullptr;
  absl::Status failure_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Collective>> CreateNcclCollective(const CollectiveOptions& options, KeyValueStore* store,
                                                                 int cuda_device) {
  DDLM_RETURN_IF_ERROR(ValidateCollectiveOptions(options));
  if (store == nullptr) return absl::InvalidArgumentError("nccl rendezvous: store is null");
  if (cuda_device < 0) {
    return absl::InvalidArgumentError(absl::StrCat("nccl rendezvous: cuda_device must be >= 0, got ", cuda_device));
  }
  auto collective = std::make_unique<NcclCollective>(options, cuda_device);
  absl::Status status = collective->Init(store, options.store_prefix);
  if (!status.ok()) {
    LOG(WARNING) << "[nccl " << options.store_prefix << " rank " << options.rank << "/" << options.world_size
                 << " cuda:" << cuda_device << "] " << status;
    return status;
  }
  return std::unique_ptr<Collective>(std::move(collective));
}

}  // namespace ddlm
