#include "common/base/key_value_store.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(InMemoryKeyValueStoreTest, SetGetAndMissingKey) {
  InMemoryKeyValueStore store;
  EXPECT_EQ(store.Get("a").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store.Set("a", "1").ok());
  ASSERT_TRUE(store.Set("a", "2").ok());
  EXPECT_EQ(*store.Get("a"), "2");
}

TEST(InMemoryKeyValueStoreTest, WaitReturnsWhenAnotherThreadSets) {
  InMemoryKeyValueStore store;
  std::thread setter([&] {
    ASSERT_TRUE(store.Set("x", "1").ok());
    ASSERT_TRUE(store.Set("y", "2").ok());
  });
  EXPECT_TRUE(store.Wait({"x", "y"}, absl::InfiniteDuration()).ok());
  setter.join();
}

TEST(InMemoryKeyValueStoreTest, WaitTimesOutNamingTheMissingKey) {
  InMemoryKeyValueStore store;
  ASSERT_TRUE(store.Set("here", "1").ok());
  absl::Status s = store.Wait({"here", "missing"}, absl::ZeroDuration());
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("missing"));
}

TEST(PrefixStoreTest, KeysLiveUnderThePrefixAndNest) {
  InMemoryKeyValueStore base;
  PrefixStore attempt("job/attempt-1/", &base);
  PrefixStore gloo("gloo/", &attempt);
  ASSERT_TRUE(gloo.Set("rank0", "addr").ok());
  EXPECT_EQ(*base.Get("job/attempt-1/gloo/rank0"), "addr");
  EXPECT_EQ(*attempt.Get("gloo/rank0"), "addr");
  EXPECT_EQ(*gloo.Get("rank0"), "addr");
  EXPECT_TRUE(gloo.Wait({"rank0"}, absl::ZeroDuration()).ok());
  // Another attempt's prefix sees none of it.
  PrefixStore other("job/attempt-2/", &base);
  EXPECT_EQ(other.Get("gloo/rank0").status().code(), absl::StatusCode::kNotFound);
  absl::Status s = other.Wait({"gloo/rank0"}, absl::ZeroDuration());
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("job/attempt-2/gloo/rank0"));  // The full key.
}

}  // namespace
}  // namespace ddlm
