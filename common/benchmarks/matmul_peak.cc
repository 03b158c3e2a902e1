#include "common/benchmarks/matmul_peak.h"

#include <algorithm>
#include <chrono>

#include <torch/torch.h>

namespace ddlm {

double MatmulGflops(int64_t m, int64_t k, int64_t n, int reps, torch::Device device, torch::ScalarType dtype) {
  using Clock = std::chrono::steady_clock;
  const torch::TensorOptions options = torch::TensorOptions(device).dtype(dtype);
  torch::Tensor a = torch::randn({m, k}, options);
  torch::Tensor b = torch::randn({k, n}, options);
  torch::Tensor c = torch::mm(a, b);
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  sync();
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    c = torch::mm(a, b);
    sync();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return 2.0 * static_cast<double>(m) * k * n / best / 1e9;
}

}  // namespace ddlm
