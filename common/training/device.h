#ifndef DDLM_COMMON_TRAINING_DEVICE_H_
#define DDLM_COMMON_TRAINING_DEVICE_H_

// Where a trainer runs: "cpu" or "cuda:N", checked against what this build and this
// machine have, plus the few device primitives the rest of ddlm needs (events that
// order one CUDA stream after another, and giving cached GPU memory back).
//
// The CPU build (LibTorch's CPU libraries only) compiles device_cpu.cc; --config=cuda compiles
// device_cuda.cc against the torch wheel's CUDA LibTorch. Callers need no #ifdef.
//
// Thread-safe: free functions; a DeviceEvent is used by one thread at a time.

#include <memory>
#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ddlm {

// True in a --config=cuda build.
bool BuiltWithCuda();

// "cpu" or "cuda:N" (and "cuda", meaning cuda:0) -> a device that exists here.
//  - INVALID_ARGUMENT for anything else, naming the string;
//  - FAILED_PRECONDITION for a CUDA device in a build without CUDA, on a machine with
//    no visible GPU, or past the last device, naming the devices that do exist.
absl::StatusOr<torch::Device> ResolveDevice(absl::string_view name);

// "cpu" or "cuda": what a job's ranks must agree on (all CPU or all GPU).
std::string DeviceKind(const torch::Device& device);
// The device's name for logs, e.g. "cuda:0 (NVIDIA H100 80GB HBM3)".
std::string DescribeDevice(const torch::Device& device);

// A LibTorch error raised while `what` ran on `device`, as a status:
// RESOURCE_EXHAUSTED for an out-of-memory error (LibTorch's message names the
// allocation that failed and what the device holds), INTERNAL otherwise.
absl::Status DeviceErrorStatus(const c10::Error& e, const torch::Device& device, absl::string_view what);

// Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX-BF16, from the
// flags in `cpuinfo`, /proc/cpuinfo's text). Without either, LibTorch emulates bfloat16
// products and schedule.precision BF16 on the CPU is slower than FP32.
bool CpuHasNativeBfloat16(const std::string& cpuinfo);
bool CpuHasNativeBfloat16();

// Returns the memory LibTorch's CUDA allocator caches but no tensor uses (after a
// failed, out-of-memory attempt). No-op on CPU.
void ReleaseCachedDeviceMemory();

// A point in a CUDA stream's queue of work (a CUDA event): lets one stream wait for
// work queued on another without the host waiting.
class DeviceEvent {
 public:
  // Null for a CPU device (nothing to order: CPU work is done when the call returns).
  static std::unique_ptr<DeviceEvent> Create(const torch::Device& device);
  virtual ~DeviceEvent() = default;

  // Marks the end of the work queued so far on the calling thread's current stream.
  virtual void RecordOnCurrentStream() = 0;
  // Makes work queued later on the calling thread's current stream wait for the mark.
  virtual void WaitOnCurrentStream() = 0;
  // The cudaEvent_t, for code that queues work on its own streams (NCCL).
  virtual void* native_handle() = 0;
};

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_DEVICE_H_
