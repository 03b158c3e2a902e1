#include "coordinator/cli/local_launch.h"

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

}  // namespace
}  // namespace ddlm
