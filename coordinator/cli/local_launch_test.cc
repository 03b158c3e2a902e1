#include "coordinator/cli/local_launch.h"

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(LocalLaunchTest, RefusesNoWorkersAndMissingBinaries) {
  LocalLaunchOptions options;
  options.workers = 0;
  EXPECT_EQ(LaunchLocally(options, stdout).status().code(), absl::StatusCode::kInvalidArgument);
  options.workers = 1;
  options.coordinator_binary = "/nonexistent/ddlm_coordinator";
  options.worker_binary = "/nonexistent/ddlm_worker";
  const absl::Status missing = LaunchLocally(options, stdout).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), ::testing::HasSubstr("/nonexistent/ddlm_coordinator"));
}

TEST(LocalLaunchTest, SaysWhenOneWorkerWithEveryCoreIsFaster) {
  JobSpec spec;
  spec.mutable_data()->set_batch_size(10);
  const std::string advice = LayoutAdvice(spec, 2, "cpu");
  EXPECT_THAT(advice, ::testing::HasSubstr("--workers=1 with data.batch_size 20"));
  EXPECT_EQ(LayoutAdvice(spec, 1, "cpu"), "");   // Already the faster layout.
  EXPECT_EQ(LayoutAdvice(spec, 2, "cuda"), "");  // One GPU each: data parallelism pays.
}

TEST(LocalLaunchTest, ChoosesOneCpuWorkerOnePerGpuOrTheSpecsNumber) {
  JobSpec spec;
  spec.set_num_workers(1);  // What LoadJobSpec fills in when the file names none.
  LaunchLayout cpu = ChooseLaunchLayout(spec, /*spec_names_num_workers=*/false, "cpu", /*visible_gpus=*/0);
  EXPECT_EQ(cpu.workers, 1);
  EXPECT_THAT(cpu.reason, ::testing::HasSubstr("faster than several workers sharing the cores"));
  EXPECT_EQ(ChooseLaunchLayout(spec, false, "cuda", 4).workers, 4);
  EXPECT_EQ(ChooseLaunchLayout(spec, false, "cuda", 0).workers, 1);
  EXPECT_EQ(ChooseLaunchLayout(spec, false, "cuda:1", 4).workers, 1);
  spec.set_num_workers(3);
  LaunchLayout given = ChooseLaunchLayout(spec, true, "cpu", 0);
  EXPECT_EQ(given.workers, 3);
  EXPECT_THAT(given.reason, ::testing::HasSubstr("the spec's num_workers"));
}

TEST(LocalLaunchTest, CountsTheGpusCudaVisibleDevicesNames) {
  const char* saved = std::getenv("CUDA_VISIBLE_DEVICES");
  const std::string restore = saved != nullptr ? saved : "";
  ::setenv("CUDA_VISIBLE_DEVICES", "0,2, 3", 1);
  EXPECT_EQ(CountVisibleGpus(), 3);
  ::setenv("CUDA_VISIBLE_DEVICES", "-1", 1);
  EXPECT_EQ(CountVisibleGpus(), 0);
  ::setenv("CUDA_VISIBLE_DEVICES", "", 1);
  EXPECT_EQ(CountVisibleGpus(), 0);
  if (saved != nullptr) {
    ::setenv("CUDA_VISIBLE_DEVICES", restore.c_str(), 1);
  } else {
    ::unsetenv("CUDA_VISIBLE_DEVICES");
  }
}

}  // namespace
}  // namespace ddlm
