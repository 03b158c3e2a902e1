#ifndef DDLM_COMMON_TRAINING_THREADING_H_
#define DDLM_COMMON_TRAINING_THREADING_H_

// Which BLAS LibTorch calls, and how many threads LibTorch and the BLAS use.
//
// The torch wheel's LibTorch (both builds) has MKL linked in. Debian's LibTorch
// (--repo_env=DDLM_LIBTORCH=/usr) calls whatever libblas.so.3 the alternatives system
// selects; the reference BLAS is ~35x slower than OpenBLAS (5.5 vs ~190 GFLOP/s for a
// 1024² float matmul on 2 cores), so ddlm logs which one is loaded and warns about it.
// LibTorch's OpenMP pool and OpenBLAS's own pthreads are separate: ConfigureThreads
// keeps LibTorch's pool at one thread by default so that they do not oversubscribe the cores.

#include <string>

namespace ddlm {

struct BlasInfo {
  std::string library_path;  // Resolved path of the loaded libblas, or "" if none.
  std::string name;          // "OpenBLAS", "reference BLAS", "MKL", "BLIS", "unknown".
  int blas_threads = -1;     // From openblas_get_num_threads, -1 if not OpenBLAS.
  std::string core;          // OpenBLAS's kernel family ("SkylakeX"), "" if not OpenBLAS.
  int torch_threads = 0;     // at::get_num_threads().
  bool is_reference() const { return name == "reference BLAS"; }
};

// Sets OpenBLAS's threads to `blas_threads` (0: one per available core) and LibTorch's
// intra-op (OpenMP) threads to `torch_threads`. The default of one LibTorch thread is
// measured: with both pools at 2 threads on 2 cores the default LSTM trained at 455
// ms/batch, with LibTorch at 1 and OpenBLAS at 2 at 275 ms/batch (the matrix products
// dominate; the two pools' spinning threads fight for the cores). Where the BLAS is the
// MKL inside the torch wheel's LibTorch (the GPU build), MKL runs on LibTorch's pool,
// which then gets `blas_threads`. Returns the BLAS count.
int ConfigureThreads(int blas_threads, int torch_threads = 1);

BlasInfo DetectBlas();

// Logs DetectBlas() with glog, warning if it is the reference BLAS.
void LogBlasInfo();

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_THREADING_H_
