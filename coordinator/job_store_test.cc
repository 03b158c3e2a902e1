#include "coordinator/job_store.h"

#include <cstdlib>

#include "common/file_io.h"
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
  ASSERT_TRUE(store.SaveRecord(MakeRecord("job-2")).ok());
  ASSERT_TRUE(store.SaveRecord(MakeRecord("job-1")).ok());
  auto records = store.LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].job().id(), "job-1");
  EXPECT_EQ((*records)[1].events_size(), 1);
}

TEST(JobStoreTest, DamagedRecordIsDataLossNamingTheFile) {
  JobStore store(TempDir("store_damaged"));
  ASSERT_TRUE(store.Init().ok());
  ASSERT_TRUE(store.SaveRecord(MakeRecord("job-1")).ok());
  const std::string path = store.state_dir() + "/jobs/job-1/job.pb";
  std::string bytes = *ReadFile(path);
  bytes[bytes.size() - 1] ^= 0x5a;
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  auto records = store.LoadAll();
  EXPECT_EQ(records.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(records.status().message(), ::testing::HasSubstr("job-1/job.pb"));
  EXPECT_EQ(DecodeJobRecord("short", "x").status().code(), absl::StatusCode::kDataLoss);
}

TEST(JobStoreTest, WritesAndDeletesCheckpoints) {
  JobStore store(TempDir("store_ckpt"));
  ASSERT_TRUE(store.Init().ok());
  ASSERT_TRUE(store.WriteCheckpoint("job-1", "e0002-s00000010", "bytes").ok());
  EXPECT_EQ(*ReadFile(store.CheckpointPath("job-1", "e0002-s00000010")), "bytes");
  ASSERT_TRUE(store.DeleteCheckpoint("job-1", "e0002-s00000010").ok());
  EXPECT_EQ(ReadFile(store.CheckpointPath("job-1", "e0002-s00000010")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(store.DeleteCheckpoint("job-1", "gone").ok());
}

}  // namespace
}  // namespace ddlm
