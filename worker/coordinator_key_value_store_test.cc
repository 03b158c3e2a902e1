#include <atomic>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/coordinator_client.h"
#include "worker/testing/fake_coordinator_client.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

// Answers KeyWait at once, as a coordinator whose keys never come would after each
// slice, recording the slices asked for; sets `stop` at the `stop_at`-th call, and
// answers OK from the `ok_at`-th.
class SlicedClient : public FakeCoordinatorClient {
 public:
  absl::Status KeyWait(const WorkerRef&, const std::vector<std::string>& keys, absl::Duration timeout) override {
    slices.push_back(timeout);
    const int call = static_cast<int>(slices.size());
    if (call == stop_at) stop.store(true);
    if (call >= ok_at) return absl::OkStatus();
    return absl::DeadlineExceededError("key '" + keys[0] + "' was not set within " + absl::FormatDuration(timeout));
  }
  std::vector<absl::Duration> slices;
  std::atomic<bool> stop{false};
  int stop_at = 1 << 30;
  int ok_at = 1 << 30;
};

TEST(CoordinatorKeyValueStoreTest, AStopEndsTheWaitWithinOneSlice) {
  SlicedClient client;
  client.stop_at = 3;
  CoordinatorKeyValueStore store(&client, WorkerRef(), &client.stop, absl::Seconds(1));
  const absl::Status status = store.Wait({"job-1/attempt-1/gloo/1"}, absl::Minutes(5));
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_EQ(client.slices.size(), 3u);  // The slice during which the stop came, and no more.
  for (absl::Duration slice : client.slices) EXPECT_EQ(slice, absl::Seconds(1));
}

TEST(CoordinatorKeyValueStoreTest, KeysThatComeEndTheWaitAndNoStopWaitsInOneCall) {
  SlicedClient client;
  client.ok_at = 2;
  CoordinatorKeyValueStore sliced(&client, WorkerRef(), &client.stop, absl::Seconds(1));
  EXPECT_TRUE(sliced.Wait({"k"}, absl::Minutes(5)).ok());
  EXPECT_EQ(client.slices.size(), 2u);

  SlicedClient whole;
  CoordinatorKeyValueStore unsliced(&whole, WorkerRef());  // No stop flag: one call, the whole timeout.
  EXPECT_EQ(unsliced.Wait({"k"}, absl::Minutes(5)).code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_EQ(whole.slices.size(), 1u);
  EXPECT_EQ(whole.slices[0], absl::Minutes(5));
}

TEST(CoordinatorKeyValueStoreTest, TheTimeoutStillEndsASlicedWaitNamingTheWholeWait) {
  SlicedClient client;
  // A timeout shorter than a slice: one slice of at most the timeout, then the deadline.
  CoordinatorKeyValueStore store(&client, WorkerRef(), &client.stop, absl::Hours(1));
  const absl::Status status = store.Wait({"job-1/attempt-1/gloo/1"}, absl::ZeroDuration());
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status.message(), HasSubstr("key 'job-1/attempt-1/gloo/1'"));
  EXPECT_THAT(status.message(), HasSubstr("in all"));
  ASSERT_EQ(client.slices.size(), 1u);
  EXPECT_EQ(client.slices[0], absl::ZeroDuration());
}

}  // namespace
}  // namespace ddlm
