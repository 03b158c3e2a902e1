#ifndef DDLM_COMMON_BENCHMARKS_MATMUL_PEAK_H_
#define DDLM_COMMON_BENCHMARKS_MATMUL_PEAK_H_

// The machine's own ceiling for benchmarks: GFLOP/s of a float matmul through
// LibTorch (and so through whatever BLAS is loaded, at the configured thread count).

#include <cstdint>

#include <torch/torch.h>

namespace ddlm {

// [m,k] x [k,n], best of `reps` after one warm-up call.
// On `device` (the default: the CPU, float32); a CUDA device waits for each product.
double MatmulGflops(int64_t m, int64_t k, int64_t n, int reps, torch::Device device = torch::kCPU,
                    torch::ScalarType dtype = torch::kFloat);

}  // namespace ddlm

#endif  // DDLM_COMMON_BENCHMARKS_MATMUL_PEAK_H_
