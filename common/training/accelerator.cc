#include "common/training/accelerator.h"

#ifdef DDLM_WITH_CUDA
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

#include "absl/strings/str_cat.h"

namespace ddlm {

AcceleratorInfo DetectAccelerators() {
  AcceleratorInfo info;
#ifdef DDLM_WITH_CUDA
  info.built_with_cuda = true;
  int version = 0;
  if (ncclGetVersion(&version) == ncclSuccess) {
    // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
    info.nccl_version = absl::StrCat(version / 10000, ".", (version % 10000) / 100, ".", version % 100);
  }
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaSuccess) {
    info.cuda_devices = count;
  } else {
    info.error = cudaGetErrorString(err);
  }
#else
  info.error = "built without CUDA (build with --config=cuda)";
#endif
  return info;
}

}  // namespace ddlm
