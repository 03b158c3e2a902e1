#include "common/training/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace ddlm {
namespace {

// LibTorch 2.x took the device type as an argument; 1.13 had one function per device.
#if TORCH_VERSION_MAJOR >= 2
bool IsEnabled(bool cuda) { return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU); }
void SetEnabled(bool cuda, bool on) { at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on); }
at::ScalarType GetDtype(bool cuda) { return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU); }
void SetDtype(bool cuda, at::ScalarType t) { at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, t); }
#else
bool IsEnabled(bool cuda) { return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
void SetEnabled(bool cuda, bool on) {
  if (cuda) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
}
at::ScalarType GetDtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void SetDtype(bool cuda, at::ScalarType t) {
  if (cuda) {
    at::autocast::set_autocast_gpu_dtype(t);
  } else {
    at::autocast::set_autocast_cpu_dtype(t);
  }
}
#endif

}  // namespace

AutocastGuard::AutocastGuard(const torch::Device& device, Precision precision) {
  if (precision != BF16) return;
  active_ = true;
  cuda_ = device.is_cuda();
  was_enabled_ = IsEnabled(cuda_);
  was_dtype_ = GetDtype(cuda_);
  SetEnabled(cuda_, true);
  SetDtype(cuda_, at::kBFloat16);
  at::autocast::increment_nesting();
}

bool CpuAutocastEnabled() { return IsEnabled(/*cuda=*/false); }

CpuAutocastPause::CpuAutocastPause() : was_enabled_(IsEnabled(false)) { SetEnabled(false, false); }
CpuAutocastPause::~CpuAutocastPause() { SetEnabled(false, was_enabled_); }

bool CpuBf16LstmWorks() {
  static const bool works = [] {
    try {
      // As training runs it: weights that want gradients, train mode.
      AutocastGuard autocast(torch::kCPU, BF16);
      const int64_t n = 8;
      torch::Tensor input = torch::zeros({2, 1, n});
      torch::Tensor state = torch::zeros({1, 1, n});
      const auto weight = torch::TensorOptions().requires_grad(true);
      std::vector<torch::Tensor> params = {torch::zeros({4 * n, n}, weight), torch::zeros({4 * n, n}, weight),
                                           torch::zeros({4 * n}, weight), torch::zeros({4 * n}, weight)};
      (void)at::lstm(input, {state, state}, params, /*has_biases=*/true, /*num_layers=*/1, /*dropout=*/0.0,
                     /*train=*/true, /*bidirectional=*/false, /*batch_first=*/false);
      return true;
    } catch (const std::exception&) {  // oneDNN's dnnl::error, or a c10::Error.
      return false;
    }
  }();
  return works;
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // Casts of parameters are cached for the region; the outermost exit drops them, or
  // the next step would reuse last step's bfloat16 copies of updated weights.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetEnabled(cuda_, was_enabled_);
  SetDtype(cuda_, was_dtype_);
}

}  // namespace ddlm
