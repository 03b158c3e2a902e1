#include "coordinator/rpc/call_deadlines.h"

#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(CallDeadlinesTest, OnlyCallsPastTheirDeadlineAreCancelledAndOnlyOnce) {
  CallDeadlines deadlines;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  int early = 0, late = 0;
  auto a = deadlines.Add(t0 + absl::Seconds(10), [&] { ++early; });
  auto b = deadlines.Add(t0 + absl::Seconds(60), [&] { ++late; });
  EXPECT_EQ(deadlines.CancelExpired(t0 + absl::Seconds(9)), 0);
  EXPECT_EQ(deadlines.CancelExpired(t0 + absl::Seconds(10)), 1);
  EXPECT_EQ(early, 1);
  EXPECT_EQ(deadlines.CancelExpired(t0 + absl::Seconds(30)), 0);  // Not twice.
  EXPECT_EQ(early, 1);
  EXPECT_EQ(late, 0);
  EXPECT_EQ(deadlines.size(), 1);
}

TEST(CallDeadlinesTest, AFinishedCallIsForgotten) {
  CallDeadlines deadlines;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  int cancelled = 0;
  {
    auto call = deadlines.Add(t0 + absl::Seconds(1), [&] { ++cancelled; });
    EXPECT_EQ(deadlines.size(), 1);
  }
  EXPECT_EQ(deadlines.size(), 0);
  EXPECT_EQ(deadlines.CancelExpired(t0 + absl::Hours(1)), 0);
  EXPECT_EQ(cancelled, 0);
}

}  // namespace
}  // namespace ddlm
