#ifndef DDLM_COMMON_TRAINING_AUTOCAST_H_
#define DDLM_COMMON_TRAINING_AUTOCAST_H_

// schedule.precision = BF16: LibTorch's autocast for the scope of a guard, as
// `with torch.autocast(device_type, dtype=torch.bfloat16)` does in Python. Matrix
// products, convolutions and cuDNN RNNs run in bfloat16, reductions and softmax in
// float32; parameters, gradients and optimizer state stay float32 (the master
// weights), so no loss scaling is needed. FP32 (the default) leaves everything alone.
//
// Autocast state is per thread: construct the guard on the thread that runs the
// forward pass. Backward needs no guard (it runs each op in its forward dtype).
// Compiles against LibTorch 1.13 (Debian) and 2.x (the wheel).

#include <torch/torch.h>

#include "proto/config.pb.h"

namespace ddlm {

class AutocastGuard {
 public:
  AutocastGuard(const torch::Device& device, Precision precision);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kFloat;
};

// Whether CPU autocast is on for this thread.
bool CpuAutocastEnabled();

// CPU autocast off for the scope, for an op this CPU cannot run in bfloat16.
class CpuAutocastPause {
 public:
  CpuAutocastPause();
  ~CpuAutocastPause();
  CpuAutocastPause(const CpuAutocastPause&) = delete;
  CpuAutocastPause& operator=(const CpuAutocastPause&) = delete;

 private:
  bool was_enabled_;
};

// Whether an LSTM runs under CPU autocast here. LibTorch sends a bfloat16 LSTM to
// oneDNN, which has no bfloat16 LSTM for CPUs without AVX-512 and throws ("could not
// create a primitive descriptor"); the model then runs its LSTM in float32 inside a
// BF16 step (the rest stays bfloat16). Probed once per process, on zero weights (no
// random numbers drawn).
bool CpuBf16LstmWorks();

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_AUTOCAST_H_
