#include "worker/local_address.h"

#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(LocalAddressTest, LoopbackTargetsAreReachedFromLoopback) {
  auto address = LocalAddressFor("127.0.0.1:50051");
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(*address, "127.0.0.1");
}

TEST(LocalAddressTest, BadTargetsAreErrors) {
  EXPECT_EQ(LocalAddressFor("no-port").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LocalAddressFor("host.invalid:1").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ddlm
