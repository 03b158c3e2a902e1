#include "coordinator/rendezvous.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

TEST(RendezvousTest, AttemptPrefixNamesJobAndAttempt) {
  EXPECT_EQ(Rendezvous::AttemptPrefix("job-7", 3), "job-7/attempt-3/");
}

TEST(RendezvousTest, SetGetWaitWithinThePrefix) {
  Rendezvous r;
  const std::string p = Rendezvous::AttemptPrefix("j", 1);
  ASSERT_TRUE(r.Set(p, p + "gloo/0", "addr0").ok());
  EXPECT_EQ(*r.Get(p, p + "gloo/0"), "addr0");
  EXPECT_TRUE(r.Wait(p, {p + "gloo/0"}, absl::ZeroDuration()).ok());
  absl::Status missing = r.Wait(p, {p + "gloo/0", p + "gloo/1"}, absl::ZeroDuration());
  EXPECT_EQ(missing.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(missing.message(), HasSubstr("gloo/1"));
  EXPECT_EQ(r.Get(p, p + "gloo/1").status().code(), absl::StatusCode::kNotFound);
}

TEST(RendezvousTest, RefusesKeysOutsideThePrefixAndBadArguments) {
  Rendezvous r;
  const std::string p = Rendezvous::AttemptPrefix("j", 1);
  const std::string other = Rendezvous::AttemptPrefix("j", 2) + "k";
  EXPECT_EQ(r.Set(p, other, "v").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(r.Get(p, other).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(r.Wait(p, {p + "a", other}, absl::ZeroDuration()).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(r.Set(p, "", "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Wait(p, {}, absl::ZeroDuration()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Wait(p, {p + "a"}, absl::Seconds(-1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Wait(p, {p + "a"}, absl::Hours(2)).code(), absl::StatusCode::kInvalidArgument);
  // A worker in no attempt has no prefix: nothing matches it.
  EXPECT_EQ(r.Set("", "x", "v").code(), absl::StatusCode::kPermissionDenied);
}

TEST(RendezvousTest, LimitsValueSizeAndKeysPerAttempt) {
  Rendezvous r;
  const std::string p = Rendezvous::AttemptPrefix("j", 1);
  EXPECT_EQ(r.Set(p, p + "big", std::string(Rendezvous::kMaxValueBytes + 1, 'x')).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(r.Set(p, p + "big", std::string(Rendezvous::kMaxValueBytes, 'x')).ok());
  for (int64_t i = 1; i < Rendezvous::kMaxKeysPerAttempt; ++i) {
    ASSERT_TRUE(r.Set(p, p + std::to_string(i), "v").ok()) << i;
  }
  EXPECT_EQ(r.KeyCount(p), Rendezvous::kMaxKeysPerAttempt);
  absl::Status full = r.Set(p, p + "one-more", "v");
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.message(), HasSubstr("4096"));
  EXPECT_TRUE(r.Set(p, p + "1", "overwritten").ok());  // Not a new key.
  EXPECT_EQ(*r.Get(p, p + "1"), "overwritten");
  // Another attempt has its own budget.
  const std::string q = Rendezvous::AttemptPrefix("j", 2);
  EXPECT_TRUE(r.Set(q, q + "a", "v").ok());
}

TEST(RendezvousTest, EndAttemptDropsOnlyItsKeys) {
  Rendezvous r;
  const std::string p = Rendezvous::AttemptPrefix("j", 1);
  const std::string q = Rendezvous::AttemptPrefix("j", 10);  // "j/attempt-1" is its prefix too.
  ASSERT_TRUE(r.Set(p, p + "a", "1").ok());
  ASSERT_TRUE(r.Set(q, q + "a", "10").ok());
  r.EndAttempt(p);
  EXPECT_EQ(r.Get(p, p + "a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.KeyCount(p), 0);
  EXPECT_EQ(*r.Get(q, q + "a"), "10");
  EXPECT_EQ(r.KeyCount(q), 1);
}

TEST(RendezvousTest, WaitReturnsWhenAnotherRankSetsTheKey) {
  Rendezvous r;
  const std::string p = Rendezvous::AttemptPrefix("j", 1);
  absl::Status waited = absl::UnknownError("not run");
  std::thread waiter([&] { waited = r.Wait(p, {p + "id"}, absl::Hours(1)); });
  r.AwaitWaitersForTest(1);
  ASSERT_TRUE(r.Set(p, p + "id", "nccl").ok());
  waiter.join();
  EXPECT_TRUE(waited.ok()) << waited;
}

TEST(RendezvousTest, ShutdownWakesWaitersAndRefusesLaterCalls) {
  Rendezvous r;
  const std::string p = Rendezvous::AttemptPrefix("j", 1);
  std::vector<absl::Status> waited(2, absl::UnknownError("not run"));
  std::vector<std::thread> waiters;
  for (int i = 0; i < 2; ++i) {
    waiters.emplace_back([&, i] { waited[i] = r.Wait(p, {p + "never"}, absl::Hours(1)); });
  }
  r.AwaitWaitersForTest(2);  // Both are blocked, with an hour to go.
  r.Shutdown();
  for (std::thread& t : waiters) t.join();
  for (const absl::Status& s : waited) EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(r.Wait(p, {p + "never"}, absl::Hours(1)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.Set(p, p + "a", "v").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.Get(p, p + "a").status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ddlm
