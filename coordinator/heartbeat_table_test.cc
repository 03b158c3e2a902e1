#include "coordinator/heartbeat_table.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

WorkerRef Ref(const std::string& id, uint64_t incarnation) {
  WorkerRef ref;
  ref.set_worker_id(id);
  ref.set_incarnation(incarnation);
  return ref;
}

TEST(HeartbeatTableTest, AnswersForTheLiveIncarnationOnly) {
  HeartbeatTable table;
  const absl::Time t = absl::UnixEpoch();
  EXPECT_EQ(table.Beat(Ref("w", 1), t).code(), absl::StatusCode::kNotFound);
  table.Track("w", 1, t);
  EXPECT_TRUE(table.Beat(Ref("w", 1), t + absl::Seconds(1)).ok());
  table.Track("w", 2, t + absl::Seconds(2));
  absl::Status stale = table.Beat(Ref("w", 1), t + absl::Seconds(3));
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(stale.message(), ::testing::HasSubstr("replaced by incarnation 2"));
  EXPECT_EQ(*table.LastBeat("w"), t + absl::Seconds(2));
}

TEST(HeartbeatTableTest, ExpiresSilentWorkersOnceAndRefusesTheirBeats) {
  HeartbeatTable table;
  const absl::Time t = absl::UnixEpoch();
  table.Track("a", 1, t);
  table.Track("b", 1, t);
  ASSERT_TRUE(table.Beat(Ref("b", 1), t + absl::Seconds(8)).ok());
  EXPECT_TRUE(table.Expire(t + absl::Seconds(10), absl::Seconds(10)).empty());  // At the limit.
  EXPECT_THAT(table.Expire(t + absl::Seconds(11), absl::Seconds(10)), ::testing::ElementsAre("a"));
  EXPECT_TRUE(table.Expire(t + absl::Seconds(12), absl::Seconds(10)).empty());  // Once.
  absl::Status dead = table.Beat(Ref("a", 1), t + absl::Seconds(12));
  EXPECT_EQ(dead.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(dead.message(), ::testing::HasSubstr("declared dead"));
  table.MarkDead("b");
  EXPECT_EQ(table.Beat(Ref("b", 1), t + absl::Seconds(12)).code(), absl::StatusCode::kAborted);
  table.Track("a", 2, t + absl::Seconds(13));  // Registered again.
  EXPECT_TRUE(table.Beat(Ref("a", 2), t + absl::Seconds(14)).ok());
}

TEST(HeartbeatTableTest, ConcurrentBeatsAndExpiriesAgree) {
  HeartbeatTable table;
  const absl::Time t = absl::UnixEpoch();
  constexpr int kWorkers = 64;
  for (int i = 0; i < kWorkers; ++i) table.Track("w" + std::to_string(i), 1, t);
  // Even workers keep beating at t+5 while the sweeper expires at t+12 with a 10 s
  // timeout: every odd worker is expired exactly once, every even one never.
  std::vector<std::thread> threads;
  for (int i = 0; i < kWorkers; i += 2) {
    threads.emplace_back([&table, i, t] {
      for (int k = 0; k < 100; ++k) {
        EXPECT_TRUE(table.Beat(Ref("w" + std::to_string(i), 1), t + absl::Seconds(5)).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<std::string> expired = table.Expire(t + absl::Seconds(12), absl::Seconds(10));
  EXPECT_EQ(expired.size(), kWorkers / 2u);
  for (const std::string& id : expired) EXPECT_EQ(std::stoi(id.substr(1)) % 2, 1) << id;
}

}  // namespace
}  // namespace ddlm
