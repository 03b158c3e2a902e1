#include "common/training/threading.h"

#include <dlfcn.h>
#include <link.h>
#include <sched.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <glog/logging.h>

#include "common/base/blas_coretype.h"

namespace ddlm {
namespace {

int AvailableCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return 1;
}

int FindBlas(struct dl_phdr_info* info, size_t /*size*/, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;
  const char* base = std::strrchr(info->dlpi_name, '/');
  base = base ? base + 1 : info->dlpi_name;
  // cuBLAS (the GPU build's) is not the CPU's BLAS.
  if (std::strstr(base, "cublas") != nullptr) return 0;
  if (std::strstr(base, "blas") != nullptr || std::strstr(base, "mkl_rt") != nullptr) {
    char resolved[PATH_MAX];
    *out = realpath(info->dlpi_name, resolved) ? resolved : info->dlpi_name;
    return 1;
  }
  return 0;
}

}  // namespace

int ConfigureThreads(int blas_threads, int torch_threads) {
  if (blas_threads <= 0) blas_threads = AvailableCores();
  if (torch_threads <= 0) torch_threads = AvailableCores();
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(blas_threads);
  } else if (at::hasMKL()) {
    // The torch wheel's LibTorch has MKL linked in, and MKL runs on LibTorch's own
    // OpenMP pool: one pool, so it gets the BLAS thread count.
    torch_threads = blas_threads;
  }
  at::set_num_threads(torch_threads);
  return blas_threads;
}

BlasInfo DetectBlas() {
  BlasInfo info;
  dl_iterate_phdr(FindBlas, &info.library_path);
  const std::string& p = info.library_path;
  using GetThreads = int (*)();
  auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (get != nullptr || p.find("openblas") != std::string::npos) {
    info.name = "OpenBLAS";
    if (get != nullptr) info.blas_threads = get();
    info.core = OpenBlasCoreName();
  } else if (p.find("mkl") != std::string::npos) {
    info.name = "MKL";
  } else if (p.empty() && at::hasMKL()) {
    info.name = "MKL";
    info.library_path = "linked into LibTorch";
  } else if (p.find("blis") != std::string::npos) {
    info.name = "BLIS";
  } else if (p.find("atlas") != std::string::npos) {
    info.name = "ATLAS";
  } else if (p.find("/blas/") != std::string::npos) {
    info.name = "reference BLAS";
  } else {
    info.name = "unknown";
  }
  info.torch_threads = at::get_num_threads();
  return info;
}

void LogBlasInfo() {
  BlasInfo info = DetectBlas();
  LOG(INFO) << "BLAS: " << info.name << (info.core.empty() ? "" : " " + info.core) << " ("
            << (info.library_path.empty() ? "not loaded" : info.library_path) << "), BLAS threads " << info.blas_threads
            << ", LibTorch threads " << info.torch_threads;
  if (const std::string replaced = RestartedFromOpenBlasCore(); !replaced.empty()) {
    LOG(INFO) << "OpenBLAS had chosen its " << replaced << " kernels, below what this CPU runs; "
              << "restarted with OPENBLAS_CORETYPE=" << info.core;
  }
  if (info.is_reference()) {
    LOG(WARNING) << "LibTorch is using the slow reference BLAS; install libopenblas0-pthread "
                    "(./setup.sh does) for ~35x faster matrix products";
  }
}

}  // namespace ddlm
