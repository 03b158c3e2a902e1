// device.h for the --config=cuda build (the torch wheel's LibTorch, its CUDA runtime).

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "common/training/device.h"

namespace ddlm {
namespace {

// Threading: one thread at a time (device.h).
class CudaEvent : public DeviceEvent {
 public:
  explicit CudaEvent(c10::DeviceIndex index) : index_(index) {
    c10::cuda::CUDAGuard guard(index_);
    // Timing off: the cheapest kind of event to record and wait for.
    C10_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
  }
  ~CudaEvent() override {
    c10::cuda::CUDAGuard guard(index_);
    cudaEventDestroy(event_);  // Best effort: nowhere to report an error.
  }

  void RecordOnCurrentStream() override {
    c10::cuda::CUDAGuard guard(index_);
    C10_CUDA_CHECK(cudaEventRecord(event_, c10::cuda::getCurrentCUDAStream(index_).stream()));
  }
  void WaitOnCurrentStream() override {
    c10::cuda::CUDAGuard guard(index_);
    C10_CUDA_CHECK(cudaStreamWaitEvent(c10::cuda::getCurrentCUDAStream(index_).stream(), event_, 0));
  }
  void* native_handle() override { return event_; }

 private:
  const c10::DeviceIndex index_;
  cudaEvent_t event_ = nullptr;
};

}  // namespace

bool BuiltWithCuda() { return true; }

std::string DescribeDevice(const torch::Device& device) {
  if (!device.is_cuda()) return device.str();
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(device.index());
  return absl::StrCat(device.str(), " (", prop->name, ", ", prop->totalGlobalMem >> 20, " MiB)");
}

void ReleaseCachedDeviceMemory() {
  if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::emptyCache();
}

std::unique_ptr<DeviceEvent> DeviceEvent::Create(const torch::Device& device) {
  if (!device.is_cuda()) return nullptr;
  return std::make_unique<CudaEvent>(device.index());
}

}  // namespace ddlm
