#include "coordinator/event_fanout.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::ElementsAre;

class Recorder : public StreamSink<JobEvent> {
 public:
  void Send(const JobEvent& event) override { sequences.push_back(event.sequence()); }
  void Close(const absl::Status& status) override { closed.push_back(status); }
  std::vector<int64_t> sequences;
  std::vector<absl::Status> closed;
};

JobEvent Event(int64_t sequence) {
  JobEvent e;
  e.set_sequence(sequence);
  return e;
}

TEST(EventFanoutTest, AnEventGoesOutOnlyOnceItsWriteIsOnDisk) {
  EventFanout fanout;
  Recorder watcher;
  fanout.Attach("job-1", 0, &watcher);
  fanout.Enqueue(5, "job-1", Event(1));
  fanout.Enqueue(7, "job-1", Event(2));
  std::vector<std::pair<std::string, int64_t>> delivered;
  auto note = [&](const std::string& job, int64_t seq) { delivered.emplace_back(job, seq); };
  fanout.Deliver(4, note);
  EXPECT_TRUE(watcher.sequences.empty());
  EXPECT_TRUE(fanout.Pending("job-1"));
  fanout.Deliver(6, note);
  EXPECT_THAT(watcher.sequences, ElementsAre(1));
  fanout.Deliver(7, note);
  EXPECT_THAT(watcher.sequences, ElementsAre(1, 2));
  EXPECT_THAT(delivered,
              ElementsAre(std::pair<std::string, int64_t>{"job-1", 1}, std::pair<std::string, int64_t>{"job-1", 2}));
  EXPECT_FALSE(fanout.Pending("job-1"));
}

TEST(EventFanoutTest, WatchersGetTheirJobsEventsAfterTheirSequence) {
  EventFanout fanout;
  Recorder all, later, other;
  fanout.Attach("job-1", 0, &all);
  fanout.Attach("job-1", 1, &later);
  fanout.Attach("job-2", 0, &other);
  fanout.Enqueue(1, "job-1", Event(1));
  fanout.Enqueue(2, "job-1", Event(2));
  fanout.Enqueue(3, "job-2", Event(1));
  fanout.Deliver(3, [](const std::string&, int64_t) {});
  EXPECT_THAT(all.sequences, ElementsAre(1, 2));
  EXPECT_THAT(later.sequences, ElementsAre(2));
  EXPECT_THAT(other.sequences, ElementsAre(1));
  EXPECT_EQ(fanout.watchers(), 3);
}

TEST(EventFanoutTest, AJobThatEndedClosesItsWatchersAfterItsLastEvent) {
  EventFanout fanout;
  Recorder watcher, other;
  fanout.Attach("job-1", 0, &watcher);
  fanout.Attach("job-2", 0, &other);
  fanout.Enqueue(1, "job-1", Event(1));
  fanout.EnqueueClose(2, "job-1");
  fanout.Deliver(1, [](const std::string&, int64_t) {});
  EXPECT_TRUE(watcher.closed.empty());
  EXPECT_TRUE(fanout.Pending("job-1"));
  fanout.Deliver(2, [](const std::string&, int64_t) {});
  ASSERT_EQ(watcher.closed.size(), 1u);
  EXPECT_TRUE(watcher.closed[0].ok());
  EXPECT_TRUE(other.closed.empty());
  EXPECT_EQ(fanout.watchers(), 1);
  EXPECT_FALSE(fanout.Pending("job-1"));
}

TEST(EventFanoutTest, ADetachedWatcherGetsNothingMore) {
  EventFanout fanout;
  Recorder a, b;
  fanout.Attach("job-1", 0, &a);
  fanout.Attach("job-1", 0, &b);
  fanout.Detach(&a);
  fanout.Enqueue(1, "job-1", Event(1));
  fanout.EnqueueClose(1, "job-1");
  fanout.Deliver(1, [](const std::string&, int64_t) {});
  EXPECT_TRUE(a.sequences.empty());
  EXPECT_TRUE(a.closed.empty());
  EXPECT_THAT(b.sequences, ElementsAre(1));
  EXPECT_EQ(b.closed.size(), 1u);
}

TEST(EventFanoutTest, CloseAllEndsEveryStreamWithTheStatus) {
  EventFanout fanout;
  Recorder a, b;
  fanout.Attach("job-1", 0, &a);
  fanout.Attach("job-2", 0, &b);
  fanout.CloseAll(absl::UnavailableError("shutting down"));
  ASSERT_EQ(a.closed.size(), 1u);
  EXPECT_EQ(a.closed[0].code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(b.closed.size(), 1u);
  EXPECT_EQ(fanout.watchers(), 0);
}

}  // namespace
}  // namespace ddlm
