#include "coordinator/cli/local_launch.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(LocalLaunchTest, SiblingBinariesOfABazelBuild) {
  EXPECT_EQ(SiblingBinary("/r/bazel-out/k8-fastbuild/bin/coordinator/cli/ddlm", "coordinator/cli", "worker",
                          "ddlm_worker"),
            "/r/bazel-out/k8-fastbuild/bin/worker/ddlm_worker");
  EXPECT_EQ(SiblingBinary("/r/bin/coordinator/cli/ddlm", "coordinator/cli", "coordinator", "ddlm_coordinator"),
            "/r/bin/coordinator/ddlm_coordinator");
}

TEST(LocalLaunchTest, SiblingBinariesCopiedToOneDirectory) {
  EXPECT_EQ(SiblingBinary("/usr/local/bin/ddlm", "coordinator/cli", "worker", "ddlm_worker"),
            "/usr/local/bin/ddlm_worker");
}

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
