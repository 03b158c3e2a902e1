#ifndef DDLM_COMMON_TRAINING_ACCELERATOR_H_
#define DDLM_COMMON_TRAINING_ACCELERATOR_H_

// What GPU support this binary was built with and can see at run time. Built with
// --config=cuda it links CUDA's runtime and NCCL (the torch wheel's); otherwise
// it reports a CPU-only build. Thread-safe (no state).

#include <string>

namespace ddlm {

struct AcceleratorInfo {
  bool built_with_cuda = false;
  int cuda_devices = 0;      // cudaGetDeviceCount; 0 when none or CPU-only.
  std::string nccl_version;  // "2.x.y" from ncclGetVersion, "" when CPU-only.
  std::string error;         // Why no device is usable, if that is the case.
};

AcceleratorInfo DetectAccelerators();

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_ACCELERATOR_H_
