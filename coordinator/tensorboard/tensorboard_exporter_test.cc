#include "coordinator/tensorboard/tensorboard_exporter.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "coordinator/tensorboard/testing_reader.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

std::string TestDir(const std::string& name) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  (void)RemoveTree(dir);
  return dir;
}

Job JobWithId(const std::string& id) {
  Job job;
  job.set_id(id);
  return job;
}

JobEvent Training(int64_t batch, double loss) {
  JobEvent e;
  e.set_unix_micros(1700000000000000 + batch * 1000);
  e.mutable_training()->set_epoch(1);
  e.mutable_training()->set_batch(batch);
  e.mutable_training()->set_num_batches(100);
  e.mutable_training()->set_loss(loss);
  return e;
}

std::vector<tensorboard::Event> RunEvents(const std::string& run_dir) {
  std::vector<tensorboard::Event> all;
  for (const std::string& name : ListDirectory(run_dir)) {
    EXPECT_TRUE(absl::StrContains(name, "tfevents")) << name;
    auto events = ReadEventFile(run_dir + "/" + name);
    EXPECT_TRUE(events.ok()) << events.status();
    if (events.ok()) all.insert(all.end(), events->begin(), events->end());
  }
  return all;
}

TEST(TensorBoardExporterTest, EachJobIsARunOfItsOwnWithItsScalarsInOrder) {
  const std::string root = TestDir("tb");
  TensorBoardExporter exporter(root, "host");
  JobEvent state;
  state.mutable_state()->set_state(RUNNING);
  exporter.OnJobEvent(JobWithId("job-1"), state);  // Writes nothing.
  for (int64_t b = 9; b < 100; b += 10) exporter.OnJobEvent(JobWithId("job-1"), Training(b, 10.0 - b / 10));
  exporter.OnJobEvent(JobWithId("job-2"), Training(9, 7.0));
  exporter.WaitUntilWritten();

  EXPECT_EQ(ListDirectory(root), (std::vector<std::string>{"job-1", "job-2"}));
  std::vector<tensorboard::Event> events = RunEvents(root + "/job-1");
  ASSERT_EQ(events.size(), 1u + 10);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  for (int i = 1; i <= 10; ++i) {
    EXPECT_EQ(events[i].step(), 10 * i);
    ASSERT_GT(events[i].summary().value_size(), 0);
    EXPECT_EQ(events[i].summary().value(0).tag(), "train/loss");
    EXPECT_FLOAT_EQ(events[i].summary().value(0).simple_value(), static_cast<float>(10.0 - (10 * i - 1) / 10));
  }
  EXPECT_EQ(RunEvents(root + "/job-2").size(), 2u);
  EXPECT_EQ(exporter.failed_writes(), 0);
  EXPECT_EQ(exporter.dropped(), 0);
}

JobEvent Ended(JobState state) {
  JobEvent e;
  e.mutable_state()->set_state(state);
  return e;
}

// One open file per running job, not per job ever seen: a coordinator that runs
// thousands of jobs must not run out of descriptors.
TEST(TensorBoardExporterTest, AJobsFileIsClosedWhenItEnds) {
  const std::string root = TestDir("tb_close");
  TensorBoardExporter exporter(root, "host");
  const size_t fds_before = ListDirectory("/proc/self/fd").size();
  const JobState ends[] = {SUCCEEDED, FAILED, CANCELLED};
  for (int j = 0; j < 300; ++j) {
    const Job job = JobWithId(absl::StrCat("job-", j));
    exporter.OnJobEvent(job, Training(9, 1.0));
    exporter.OnJobEvent(job, Ended(ends[j % 3]));
  }
  exporter.OnJobEvent(JobWithId("running"), Training(9, 1.0));
  exporter.WaitUntilWritten();
  EXPECT_EQ(exporter.open_runs(), 1);
  EXPECT_LE(ListDirectory("/proc/self/fd").size(), fds_before + 1);
  EXPECT_EQ(ListDirectory(root).size(), 301u);  // Each job's run stays on disk.
}

// A run picked up midway (the coordinator restarted) stays on the job's step axis: an
// epoch's result lands on the epoch's last step, not on the epoch's number.
TEST(TensorBoardExporterTest, ARunPickedUpMidwayKeepsTheStepAxis) {
  const std::string root = TestDir("tb_resume");
  TensorBoardExporter exporter(root, "host");
  Job job = JobWithId("job-1");
  job.mutable_last_training()->set_num_batches(100);
  job.set_global_step(280);
  JobEvent epoch;
  epoch.set_unix_micros(1700000000000000);
  epoch.mutable_epoch()->set_epoch(3);
  epoch.mutable_epoch()->set_val_ppl(50);
  exporter.OnJobEvent(job, epoch);
  JobEvent test;
  test.set_unix_micros(1700000001000000);
  test.mutable_test()->set_test_ppl(45);
  exporter.OnJobEvent(job, test);
  exporter.WaitUntilWritten();
  std::vector<tensorboard::Event> events = RunEvents(root + "/job-1");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].step(), 300);
  EXPECT_EQ(events[2].step(), 300);
}

TEST(TensorBoardExporterTest, ADeletedJobsRunIsRemoved) {
  const std::string root = TestDir("tb_delete");
  TensorBoardExporter exporter(root, "host");
  exporter.OnJobEvent(JobWithId("job-1"), Training(9, 1.0));
  exporter.OnJobEvent(JobWithId("job-1"), Ended(SUCCEEDED));
  exporter.OnJobEvent(JobWithId("job-2"), Training(9, 1.0));
  exporter.OnJobDeleted("job-1");
  exporter.WaitUntilWritten();
  EXPECT_EQ(ListDirectory(root), (std::vector<std::string>{"job-2"}));
}

TEST(TensorBoardExporterTest, WhatIsQueuedIsWrittenBeforeTheExporterStops) {
  const std::string root = TestDir("tb_stop");
  {
    TensorBoardExporter exporter(root, "host");
    for (int64_t b = 0; b < 500; ++b) exporter.OnJobEvent(JobWithId("job-1"), Training(b, 1.0));
  }
  EXPECT_EQ(RunEvents(root + "/job-1").size(), 501u);
}

TEST(TensorBoardExporterTest, AFailedWriteIsCountedAndTheRunGoesOn) {
  const std::string root = TestDir("tb_fail");
  // job-1's run directory cannot be made: a file stands where it should be.
  ::mkdir(root.c_str(), 0755);
  ASSERT_TRUE(WriteFileAtomically(root + "/job-1", "not a directory").ok());
  TensorBoardExporter exporter(root, "host");
  exporter.OnJobEvent(JobWithId("job-1"), Training(9, 1.0));
  exporter.OnJobEvent(JobWithId("job-2"), Training(9, 1.0));
  exporter.WaitUntilWritten();
  EXPECT_EQ(exporter.failed_writes(), 1);
  EXPECT_EQ(RunEvents(root + "/job-2").size(), 2u);
}

}  // namespace
}  // namespace ddlm
