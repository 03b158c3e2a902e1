#include "common/training/device.h"

#include "absl/strings/str_cat.h"

#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

TEST(ResolveDeviceTest, CpuAlwaysExists) {
  absl::StatusOr<torch::Device> device = ResolveDevice("cpu");
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_TRUE(device->is_cpu());
  EXPECT_EQ(DeviceKind(*device), "cpu");
  EXPECT_EQ(DeviceEvent::Create(*device), nullptr);  // Nothing to order on the CPU.
}

TEST(ResolveDeviceTest, MalformedNamesAreInvalidArgumentsNamingTheString) {
  for (const char* name : {"", "CPU", "gpu", "cuda:", "cuda:-1", "cuda:x", "cuda: 1", "cuda:0:1", "cuda:999999"}) {
    absl::StatusOr<torch::Device> device = ResolveDevice(name);
    ASSERT_FALSE(device.ok()) << name;
    EXPECT_EQ(device.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(device.status().message(), HasSubstr(absl::StrCat("'", name, "'")));
  }
}

TEST(ResolveDeviceTest, CudaDevicesThatDoNotExistNameWhatDoes) {
  const int count = static_cast<int>(torch::cuda::device_count());
  // One past the last device: never exists.
  const std::string missing = absl::StrCat("cuda:", count);
  absl::StatusOr<torch::Device> device = ResolveDevice(missing);
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(device.status().message(), HasSubstr(missing));
  if (!BuiltWithCuda()) {
    EXPECT_THAT(device.status().message(), HasSubstr("built without CUDA"));
    EXPECT_THAT(device.status().message(), HasSubstr("--config=cuda"));
  } else if (count == 0) {
    EXPECT_THAT(device.status().message(), HasSubstr("no CUDA device is visible"));
  } else {
    EXPECT_THAT(device.status().message(), HasSubstr(absl::StrCat(count, " CUDA device(s)")));
    EXPECT_THAT(device.status().message(), HasSubstr("cuda:0"));
  }
}

TEST(ResolveDeviceTest, ExistingCudaDevicesResolve) {
  if (torch::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device here";
  absl::StatusOr<torch::Device> device = ResolveDevice("cuda");
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ(device->str(), "cuda:0");
  EXPECT_EQ(DeviceKind(*device), "cuda");
  EXPECT_NE(DeviceEvent::Create(*device), nullptr);
}

TEST(DeviceErrorStatusTest, OutOfMemoryIsResourceExhaustedAndKeepsTheAllocation) {
  const c10::OutOfMemoryError oom(c10::SourceLocation{"f", "file.cc", 1},
                                  "CUDA out of memory. Tried to allocate 7.50 GiB.");
  absl::Status status = DeviceErrorStatus(oom, torch::Device(torch::kCUDA, 0), "training step");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("out of memory on cuda:0 training step"));
  EXPECT_THAT(status.message(), HasSubstr("Tried to allocate 7.50 GiB"));
}

TEST(DeviceErrorStatusTest, OtherErrorsAreInternal) {
  const c10::Error error(c10::SourceLocation{"f", "file.cc", 1}, "shape mismatch");
  absl::Status status = DeviceErrorStatus(error, torch::kCPU, "evaluation");
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("evaluation failed on cpu: shape mismatch"));
}

TEST(DeviceTest, NativeBfloat16IsReadFromTheCpuFlags) {
  EXPECT_TRUE(CpuHasNativeBfloat16("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512vl\n"));
  EXPECT_TRUE(CpuHasNativeBfloat16("flags\t\t: fpu amx_tile amx_bf16\n"));
  EXPECT_FALSE(CpuHasNativeBfloat16("flags\t\t: fpu sse avx2 avx512f avx512_bf16x\n"));
  EXPECT_FALSE(CpuHasNativeBfloat16("flags\t\t: fpu sse avx2 fma\n"));
  EXPECT_FALSE(CpuHasNativeBfloat16(""));
}

}  // namespace
}  // namespace ddlm
