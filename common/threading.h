#ifndef DDLM_COMMON_THREADING_H_
#define DDLM_COMMON_THREADING_H_

// Which BLAS LibTorch calls, and how many threads LibTorch and the BLAS use.
//
// Debian's LibTorch calls whatever libblas.so.3 the alternatives system selects. The
// reference BLAS is ~35x slower than OpenBLAS here (5.5 vs ~190 GFLOP/s for a 1024²
// float matmul on 2 cores), so ddlm logs which one is loaded and warns about it.
// LibTorch's OpenMP pool and OpenBLAS's own pthreads are separate: ConfigureThreads
// sets both to the same count so that together they do not oversubscribe the cores.

#include <string>

namespace ddlm {

struct BlasInfo {
  std::string library_path;  // Resolved path of the loaded libblas, or "" if none.
  std::string name;          // "OpenBLAS", "reference BLAS", "MKL", "BLIS", "unknown".
  int blas_threads = -1;     // From openblas_get_num_threads, -1 if not OpenBLAS.
  int torch_threads = 0;     // at::get_num_threads().
  bool is_reference() const { return name == "reference BLAS"; }
};

// Sets LibTorch's intra-op threads and (if loaded) OpenBLAS's threads to `threads`;
// 0 means one per available core. Returns the count used.
int ConfigureThreads(int threads);

BlasInfo DetectBlas();

// Logs DetectBlas() with glog, warning if it is the reference BLAS.
void LogBlasInfo();

}  // namespace ddlm

#endif  // DDLM_COMMON_THREADING_H_
