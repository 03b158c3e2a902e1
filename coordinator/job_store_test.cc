#include "coordinator/job_store.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>

#include "common/base/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  return std::string(base != nullptr ? base : "/tmp") + "/" + name;
}

JobRecord MakeRecord(const std::string& id) {
  JobRecord r;
  r.mutable_job()->set_id(id);
  r.mutable_job()->set_state(RUNNING);
  r.add_events()->mutable_state()->set_state(QUEUED);
  return r;
}

TEST(JobStoreTest, SavesAndLoadsRecords) {
  JobStore store(TempDir("store_roundtrip"));
  ASSERT_TRUE(store.Init().ok());
  ASSERT_TRUE(store.WriteSnapshot(MakeRecord("job-2")).ok());
  ASSERT_TRUE(store.WriteSnapshot(MakeRecord("job-1")).ok());
  auto records = store.LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].job().id(), "job-1");
  EXPECT_EQ((*records)[1].events_size(), 1);
}

TEST(JobStoreTest, ADamagedRecordIsSetAsideAndTheOtherJobsLoad) {
  JobStore store(TempDir("store_damaged"));
  ASSERT_TRUE(store.Init().ok());
  ASSERT_TRUE(store.WriteSnapshot(MakeRecord("job-1")).ok());
  ASSERT_TRUE(store.WriteSnapshot(MakeRecord("job-2")).ok());
  const std::string path = store.state_dir() + "/jobs/job-1/job.pb";
  const std::string original = *ReadFile(path);
  std::string bytes = original;
  bytes[bytes.size() - 1] ^= 0x5a;
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  std::vector<JobStore::SetAside> set_aside;
  auto records = store.LoadAll(&set_aside);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].job().id(), "job-2");
  ASSERT_EQ(set_aside.size(), 1u);
  EXPECT_EQ(set_aside[0].job_id, "job-1");
  const std::string& report = set_aside[0].report;
  EXPECT_THAT(report, ::testing::HasSubstr("job-1/job.pb"));
  EXPECT_THAT(report, ::testing::HasSubstr("CRC-32"));
  EXPECT_THAT(report, ::testing::HasSubstr("/damaged/job-1-"));
  // Moved, bytes untouched; gone from jobs/, so the next load is clean.
  EXPECT_EQ(ReadFile(path).status().code(), absl::StatusCode::kNotFound);
  const std::string moved = report.substr(report.find(store.state_dir() + "/damaged/"));
  EXPECT_EQ(*ReadFile(moved.substr(0, moved.find(' ')) + "/job.pb"), bytes);
  set_aside.clear();
  EXPECT_EQ(store.LoadAll(&set_aside)->size(), 1u);
  EXPECT_TRUE(set_aside.empty());
  EXPECT_EQ(DecodeJobRecord("short", "x").status().code(), absl::StatusCode::kDataLoss);
}

TEST(JobStoreTest, LoadingRemovesWhatACrashLeftBehind) {
  JobStore store(TempDir("store_leftovers"));
  ASSERT_TRUE(store.Init().ok());
  JobRecord record = MakeRecord("job-1");
  record.add_checkpoints()->set_id("e0001-s00000010");
  ASSERT_TRUE(store.WriteSnapshot(record).ok());
  const std::string dir = store.state_dir() + "/jobs/job-1";
  for (const char* id : {"e0001-s00000010", "e0001-s00000005", "e0001-s00000020.attempt-2.partial"}) {
    ASSERT_TRUE(store.WriteCheckpoint("job-1", id, "bytes").ok());
  }
  ASSERT_TRUE(WriteFileAtomically(dir + "/job.pb.tmp.123", "half").ok());
  ASSERT_TRUE(WriteFileAtomically(dir + "/checkpoints/e0001-s00000030.ckpt.tmp.9", "half").ok());
  auto records = store.LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 1u);
  // The kept checkpoint stays; the dropped one, the staged upload and temporaries go.
  EXPECT_EQ(*ReadFile(dir + "/checkpoints/e0001-s00000010.ckpt"), "bytes");
  for (const std::string& gone :
       {dir + "/checkpoints/e0001-s00000005.ckpt", dir + "/checkpoints/e0001-s00000020.attempt-2.partial.ckpt",
        dir + "/job.pb.tmp.123", dir + "/checkpoints/e0001-s00000030.ckpt.tmp.9"}) {
    EXPECT_EQ(ReadFile(gone).status().code(), absl::StatusCode::kNotFound) << gone;
  }
  EXPECT_TRUE(ReadFile(dir + "/job.pb").ok());
}

// The change that adds event `sequence` (a training event) to job `id`.
JobLogEntry Change(const std::string& id, int64_t generation, int64_t sequence) {
  JobLogEntry e;
  e.set_generation(generation);
  e.mutable_job()->set_id(id);
  e.mutable_job()->set_state(RUNNING);
  e.mutable_job()->set_global_step(sequence * 10);
  e.mutable_job()->set_last_event_sequence(sequence);
  e.add_checkpoints()->set_id("e0001-s" + std::to_string(sequence));
  e.mutable_event()->set_sequence(sequence);
  e.mutable_event()->mutable_training()->set_loss(1.0 / static_cast<double>(sequence));
  return e;
}

off_t FileSize(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  return bytes.ok() ? static_cast<off_t>(bytes->size()) : -1;
}

TEST(JobStoreTest, ReplaysTheLogOverTheSnapshot) {
  JobStore store(TempDir("store_log"));
  ASSERT_TRUE(store.Init().ok());
  JobRecord r = MakeRecord("job-1");  // Event 1 is in the snapshot.
  r.set_generation(1);
  ASSERT_TRUE(store.WriteSnapshot(r).ok());
  for (int64_t seq = 2; seq <= 50; ++seq) ASSERT_TRUE(store.AppendLog("job-1", Change("job-1", 1, seq)).ok());
  ASSERT_TRUE(store.SyncLogs().ok());

  auto records = store.LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 1u);
  const JobRecord& loaded = (*records)[0];
  ASSERT_EQ(loaded.events_size(), 50);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(loaded.events(i).sequence(), i == 0 ? 0 : i + 1);
  EXPECT_EQ(loaded.events(49).training().loss(), 1.0 / 50);
  // The header and checkpoints are the last change's.
  EXPECT_EQ(loaded.job().global_step(), 500);
  ASSERT_EQ(loaded.checkpoints_size(), 1);
  EXPECT_EQ(loaded.checkpoints(0).id(), "e0001-s50");
}

TEST(JobStoreTest, AnAppendCostsTheSameWhateverTheJobsLength) {
  JobStore store(TempDir("store_flat"));
  ASSERT_TRUE(store.Init().ok());
  JobRecord r = MakeRecord("job-1");
  r.set_generation(1);
  ASSERT_TRUE(store.WriteSnapshot(r).ok());
  const std::string log = store.LogPath("job-1");
  ASSERT_TRUE(store.AppendLog("job-1", Change("job-1", 1, 2)).ok());
  const off_t first = FileSize(log);
  for (int64_t seq = 3; seq < 2000; ++seq) ASSERT_TRUE(store.AppendLog("job-1", Change("job-1", 1, seq)).ok());
  const off_t before = FileSize(log);
  ASSERT_TRUE(store.AppendLog("job-1", Change("job-1", 1, 2000)).ok());
  // Event 2000 writes about as many bytes as event 2 did (its numbers are a few
  // bytes longer), where rewriting the record would write all 2000.
  EXPECT_LE(FileSize(log) - before, first + 16);
  // The snapshot was not touched.
  EXPECT_EQ(DecodeJobRecord(*ReadFile(store.state_dir() + "/jobs/job-1/job.pb"), "x")->events_size(), 1);
}

TEST(JobStoreTest, ATornLastFrameIsCutOffAndTheLogGoesOn) {
  JobStore store(TempDir("store_torn"));
  ASSERT_TRUE(store.Init().ok());
  JobRecord r = MakeRecord("job-1");
  r.set_generation(1);
  ASSERT_TRUE(store.WriteSnapshot(r).ok());
  for (int64_t seq = 2; seq <= 4; ++seq) ASSERT_TRUE(store.AppendLog("job-1", Change("job-1", 1, seq)).ok());
  ASSERT_TRUE(store.SyncLogs().ok());
  const std::string log = store.LogPath("job-1");
  const off_t whole = FileSize(log);
  // A crash in the middle of appending event 5: half its frame reached the disk.
  std::string frame = EncodeLogFrame(Change("job-1", 1, 5));
  {
    std::string bytes = *ReadFile(log) + frame.substr(0, frame.size() / 2);
    ASSERT_TRUE(WriteFileAtomically(log, bytes).ok());
  }
  JobStore reopened(store.state_dir());
  auto records = reopened.LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ((*records)[0].events_size(), 4);
  EXPECT_EQ(FileSize(log), whole);  // Cut back to the last whole frame.
  // Appending goes on after it, and reads back.
  ASSERT_TRUE(reopened.AppendLog("job-1", Change("job-1", 1, 5)).ok());
  ASSERT_TRUE(reopened.SyncLogs().ok());
  records = JobStore(store.state_dir()).LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ((*records)[0].events_size(), 5);
}

TEST(JobStoreTest, ADamagedFrameStopsTheReplayThere) {
  JobStore store(TempDir("store_crc"));
  ASSERT_TRUE(store.Init().ok());
  JobRecord r = MakeRecord("job-1");
  r.set_generation(1);
  ASSERT_TRUE(store.WriteSnapshot(r).ok());
  for (int64_t seq = 2; seq <= 3; ++seq) ASSERT_TRUE(store.AppendLog("job-1", Change("job-1", 1, seq)).ok());
  const std::string log = store.LogPath("job-1");
  std::string bytes = *ReadFile(log);
  bytes[bytes.size() - 3] ^= 0x40;  // In event 3's payload.
  ASSERT_TRUE(WriteFileAtomically(log, bytes).ok());
  auto records = JobStore(store.state_dir()).LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ((*records)[0].events_size(), 2);
}

TEST(JobStoreTest, ASnapshotTakesInTheLogAndOlderEntriesAreSkipped) {
  JobStore store(TempDir("store_compact"));
  ASSERT_TRUE(store.Init().ok());
  JobRecord r = MakeRecord("job-1");
  r.set_generation(1);
  ASSERT_TRUE(store.WriteSnapshot(r).ok());
  for (int64_t seq = 2; seq <= 5; ++seq) ASSERT_TRUE(store.AppendLog("job-1", Change("job-1", 1, seq)).ok());
  ASSERT_TRUE(store.SyncLogs().ok());
  const std::string log = store.LogPath("job-1");
  const std::string generation1 = *ReadFile(log);

  // The job ends: its whole record becomes the snapshot, and the log empties.
  JobRecord ended = (*JobStore(store.state_dir()).LoadAll())[0];
  ended.mutable_job()->set_state(SUCCEEDED);
  ended.set_generation(2);
  ASSERT_TRUE(store.WriteSnapshot(ended).ok());
  EXPECT_EQ(FileSize(log), 0);
  // A crash between the snapshot's rename and the truncation leaves the old entries:
  // they are of generation 1 and are not applied twice.
  ASSERT_TRUE(WriteFileAtomically(log, generation1).ok());
  auto records = JobStore(store.state_dir()).LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ((*records)[0].events_size(), 5);
  EXPECT_EQ((*records)[0].job().state(), SUCCEEDED);
}

TEST(JobStoreTest, AGapInTheEventsSetsTheJobAsideNamingTheLog) {
  JobStore store(TempDir("store_gap"));
  ASSERT_TRUE(store.Init().ok());
  JobRecord r = MakeRecord("job-1");
  r.set_generation(1);
  ASSERT_TRUE(store.WriteSnapshot(r).ok());
  ASSERT_TRUE(store.AppendLog("job-1", Change("job-1", 1, 3)).ok());  // No event 2.
  std::vector<JobStore::SetAside> set_aside;
  auto records = JobStore(store.state_dir()).LoadAll(&set_aside);
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_TRUE(records->empty());
  ASSERT_EQ(set_aside.size(), 1u);
  EXPECT_THAT(set_aside[0].report, ::testing::HasSubstr("job-1/events.log"));
  EXPECT_THAT(set_aside[0].report, ::testing::HasSubstr("a gap"));
}

TEST(JobStoreTest, AFailedAppendLeavesNoTornFrame) {
  JobStore store(TempDir("store_full"));
  ASSERT_TRUE(store.Init().ok());
  JobRecord r = MakeRecord("job-1");
  r.set_generation(1);
  ASSERT_TRUE(store.WriteSnapshot(r).ok());
  ASSERT_TRUE(store.AppendLog("job-1", Change("job-1", 1, 2)).ok());
  const off_t size = FileSize(store.LogPath("job-1"));
  // A disk that fills up: files may not grow past a few bytes more than the log has.
  JobLogEntry big = Change("job-1", 1, 3);
  big.mutable_job()->set_message(std::string(4096, 'x'));
  signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = static_cast<rlim_t>(size + 100);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  absl::Status full = store.AppendLog("job-1", big);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  EXPECT_FALSE(full.ok());
  EXPECT_THAT(full.message(), ::testing::HasSubstr("job-1/events.log"));
  EXPECT_EQ(FileSize(store.LogPath("job-1")), size);
  // Event 3 is missing from the log: event 4 may not follow it there (a gap would make
  // the whole job unreadable)...
  absl::Status behind = store.AppendLog("job-1", Change("job-1", 1, 4));
  EXPECT_EQ(behind.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(behind.message(), ::testing::HasSubstr("missed an earlier change"));
  auto records = JobStore(store.state_dir()).LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 1u);  // Loads whole, as of event 2.
  EXPECT_EQ((*records)[0].events_size(), 2);
  // ...until the record is written whole; then appends resume.
  JobRecord whole = (*records)[0];
  whole.add_events()->set_sequence(3);
  whole.set_generation(2);
  ASSERT_TRUE(store.WriteSnapshot(whole).ok());
  ASSERT_TRUE(store.AppendLog("job-1", Change("job-1", 2, 4)).ok());
  records = JobStore(store.state_dir()).LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ((*records)[0].events_size(), 4);
}

TEST(JobStoreTest, WritesAndDeletesCheckpoints) {
  JobStore store(TempDir("store_ckpt"));
  ASSERT_TRUE(store.Init().ok());
  ASSERT_TRUE(store.WriteCheckpoint("job-1", "e0002-s00000010", "bytes").ok());
  EXPECT_EQ(*ReadFile(store.CheckpointPath("job-1", "e0002-s00000010")), "bytes");
  ASSERT_TRUE(store.DeleteCheckpoint("job-1", "e0002-s00000010").ok());
  EXPECT_EQ(ReadFile(store.CheckpointPath("job-1", "e0002-s00000010")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store.DeleteCheckpoint("job-1", "gone").ok());
}

TEST(JobStoreTest, ALinkKeepsAKeptFileUnderASecondNameForAnUndo) {
  JobStore store(TempDir("store_link"));
  ASSERT_TRUE(store.Init().ok());
  EXPECT_FALSE(*store.LinkCheckpoint("job-1", "e1", "up.previous"));  // Nothing to keep.
  ASSERT_TRUE(store.WriteCheckpoint("job-1", "e1", "old").ok());
  ASSERT_TRUE(store.WriteCheckpoint("job-1", "up.previous", "a leftover of a crash").ok());
  ASSERT_TRUE(*store.LinkCheckpoint("job-1", "e1", "up.previous"));  // Replaces the leftover.
  ASSERT_TRUE(store.WriteCheckpoint("job-1", "staged", "new").ok());
  ASSERT_TRUE(store.RenameCheckpoint("job-1", "staged", "e1").ok());
  EXPECT_EQ(*ReadFile(store.CheckpointPath("job-1", "e1")), "new");
  ASSERT_TRUE(store.RenameCheckpoint("job-1", "up.previous", "e1").ok());  // The undo.
  EXPECT_EQ(*ReadFile(store.CheckpointPath("job-1", "e1")), "old");
  EXPECT_EQ(ReadFile(store.CheckpointPath("job-1", "up.previous")).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ddlm
