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

}  // namespace
}  // namespace ddlm
