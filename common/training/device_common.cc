// The parts of device.h that are the same in both builds.

#include <cstdint>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/training/device.h"

namespace ddlm {

absl::StatusOr<torch::Device> ResolveDevice(absl::string_view name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  absl::string_view index = name;
  int cuda_index = 0;
  if (index == "cuda") {
    index = "cuda:0";
  }
  // SimpleAtoi accepts signs and spaces; insist on plain digits.
  if (!absl::ConsumePrefix(&index, "cuda:") || index.empty() ||
      index.find_first_not_of("0123456789") != absl::string_view::npos || !absl::SimpleAtoi(index, &cuda_index) ||
      cuda_index > INT8_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("device '", name, "' is neither \"cpu\" nor \"cuda:N\""));
  }
  if (!BuiltWithCuda()) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", name,
                     ": this ddlm was built without CUDA (the default build links only LibTorch's CPU "
                     "libraries); only \"cpu\" exists. Build the GPU version with ./setup.sh --cuda and "
                     "bazel build --config=cuda "
                     "(README, \"Training on GPUs\")"));
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  if (count == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", name,
                     ": no CUDA device is visible on this machine (check nvidia-smi and "
                     "CUDA_VISIBLE_DEVICES); only \"cpu\" exists"));
  }
  if (cuda_index >= count) {
    std::vector<std::string> names;
    for (int i = 0; i < count; ++i) names.push_back(absl::StrCat("cuda:", i));
    return absl::FailedPreconditionError(absl::StrCat("device ", name, ": this machine has ", count,
                                                      " CUDA device(s): ", absl::StrJoin(names, ", "),
                                                      " (and \"cpu\")"));
  }
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(cuda_index));
}

absl::Status DeviceErrorStatus(const c10::Error& e, const torch::Device& device, absl::string_view what) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("out of memory on ", device.str(), " ", what,
                                                     " (make data.batch_size or the model "
                                                     "smaller): ",
                                                     e.what_without_backtrace()));
  }
  return absl::InternalError(absl::StrCat(what, " failed on ", device.str(), ": ", e.what_without_backtrace()));
}

std::string DeviceKind(const torch::Device& device) { return device.is_cuda() ? "cuda" : "cpu"; }

bool CpuHasNativeBfloat16(const std::string& cpuinfo) {
  std::istringstream lines(cpuinfo);
  std::string line;
  while (std::getline(lines, line)) {
    if (!absl::StartsWith(line, "flags")) continue;
    const std::string flags = line + " ";
    return absl::StrContains(flags, " avx512_bf16 ") || absl::StrContains(flags, " amx_bf16 ");
  }
  return false;
}

bool CpuHasNativeBfloat16() {
  std::ifstream in("/proc/cpuinfo");
  std::stringstream text;
  text << in.rdbuf();
  return CpuHasNativeBfloat16(text.str());
}

}  // namespace ddlm
