#include "coordinator/worker_credentials.h"

#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(WorkerCredentialsTest, TheFirstRegistrationBindsTheId) {
  WorkerCredentials credentials;
  EXPECT_EQ(*credentials.Bind("w0", "rack1"), true);
  EXPECT_EQ(*credentials.Bind("w0", "rack1"), false);  // The same worker, again: already bound.
  EXPECT_EQ(credentials.Bind("w0", "rack2").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(credentials.Check("w0", "rack1").ok());
  EXPECT_EQ(credentials.Check("w0", "rack2").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(credentials.Check("w9", "rack2").ok());  // Unbound: the registry answers.
  EXPECT_EQ(*credentials.Bind("w1", "rack2"), true);
  EXPECT_EQ(credentials.size(), 2);
}

TEST(WorkerCredentialsTest, AForgottenIdCanBeBoundAgain) {
  WorkerCredentials credentials;
  ASSERT_TRUE(credentials.Bind("w0", "rack1").ok());
  credentials.Forget("w0");
  EXPECT_EQ(*credentials.Bind("w0", "rack2"), true);
  EXPECT_EQ(credentials.Check("w0", "rack1").code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace ddlm
