#include "coordinator/record_writer.h"

#include <cstdlib>
#include <thread>
#include <vector>

#include "common/base/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  return std::string(base != nullptr ? base : "/tmp") + "/" + name;
}

JobRecord NewJob(const std::string& id) {
  JobRecord r;
  r.mutable_job()->set_id(id);
  r.mutable_job()->set_state(QUEUED);
  r.set_generation(1);
  return r;
}

JobLogEntry Event(const std::string& id, int64_t sequence) {
  JobLogEntry e;
  e.set_generation(1);
  e.mutable_job()->set_id(id);
  e.mutable_job()->set_last_event_sequence(sequence);
  e.mutable_event()->set_sequence(sequence);
  return e;
}

TEST(JobRecordWriterTest, AFlushedChangeIsOnDisk) {
  JobStore store(TempDir("writer_flush"));
  ASSERT_TRUE(store.Init().ok());
  JobRecordWriter writer(&store);
  EXPECT_TRUE(writer.Flush(0).ok());
  writer.Snapshot(NewJob("job-1"));
  writer.Append("job-1", Event("job-1", 1));
  const uint64_t ticket = writer.Append("job-1", Event("job-1", 2));
  // Queued, not written: nothing is on disk before the flush.
  EXPECT_EQ(ReadFile(store.state_dir() + "/jobs/job-1/job.pb").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(writer.Flush(ticket).ok());
  auto records = JobStore(store.state_dir()).LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].events_size(), 2);
  EXPECT_EQ(writer.writes(), 3);
  EXPECT_EQ(writer.syncs(), 1);            // One batch, one sync.
  EXPECT_TRUE(writer.Flush(ticket).ok());  // Again: already durable.
  EXPECT_EQ(writer.syncs(), 1);
}

TEST(JobRecordWriterTest, ConcurrentChangesAreAllWrittenInOrder) {
  JobStore store(TempDir("writer_group"));
  ASSERT_TRUE(store.Init().ok());
  JobRecordWriter writer(&store);
  constexpr int kJobs = 8, kEvents = 50;
  for (int j = 0; j < kJobs; ++j) ASSERT_TRUE(writer.Flush(writer.Snapshot(NewJob("job-" + std::to_string(j)))).ok());
  std::vector<std::thread> threads;
  for (int j = 0; j < kJobs; ++j) {
    threads.emplace_back([&writer, j] {
      const std::string id = "job-" + std::to_string(j);
      for (int64_t seq = 1; seq <= kEvents; ++seq) {
        EXPECT_TRUE(writer.Flush(writer.Append(id, Event(id, seq))).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  // Every change is on disk, in order per job.
  auto records = JobStore(store.state_dir()).LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), static_cast<size_t>(kJobs));
  for (const JobRecord& r : *records) {
    ASSERT_EQ(r.events_size(), kEvents) << r.job().id();
    for (int i = 0; i < kEvents; ++i) EXPECT_EQ(r.events(i).sequence(), i + 1);
  }
  EXPECT_EQ(writer.writes(), kJobs + kJobs * kEvents);
}

TEST(JobRecordWriterTest, AFailedWriteFailsTheFlushOfItsBatchNamingThePath) {
  JobStore store(TempDir("writer_fail"));
  ASSERT_TRUE(store.Init().ok());
  // job-9's directory cannot be created: a file holds its name.
  ASSERT_TRUE(WriteFileAtomically(store.state_dir() + "/jobs/job-9", "not a directory").ok());
  JobRecordWriter writer(&store);
  const uint64_t good = writer.Snapshot(NewJob("job-1"));
  ASSERT_TRUE(writer.Flush(good).ok());
  const uint64_t bad = writer.Append("job-9", Event("job-9", 1));
  absl::Status s = writer.Flush(bad);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), ::testing::HasSubstr("job-9"));
  EXPECT_EQ(writer.Flush(bad).code(), s.code());  // Asked again: the same answer.
  // Later changes to other jobs are unaffected.
  EXPECT_TRUE(writer.Flush(writer.Append("job-1", Event("job-1", 1))).ok());
  EXPECT_TRUE(writer.Flush(good).ok());
}

}  // namespace
}  // namespace ddlm
