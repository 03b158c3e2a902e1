#include "coordinator/cli/job_text.h"

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(JobTextTest, EventsReadLikeWordLanguageModelsLog) {
  JobEvent training;
  TrainingMetrics& m = *training.mutable_training();
  m.set_epoch(1);
  m.set_batch(200);
  m.set_num_batches(2983);
  m.set_lr(20);
  m.set_ms_per_batch(35.25);
  m.set_loss(7.5);
  m.set_ppl(1808.04);
  m.set_tokens_per_second(39716);
  EXPECT_EQ(DescribeEvent(training),
            "| epoch   1 |   200/ 2983 batches | lr 20.00 | ms/batch   35.2 | loss  7.50 | ppl  1808.04 | 39716 tok/s");

  JobEvent epoch;
  epoch.mutable_epoch()->set_epoch(2);
  epoch.mutable_epoch()->set_seconds(12.5);
  epoch.mutable_epoch()->set_val_loss(5.5);
  epoch.mutable_epoch()->set_val_ppl(244.69);
  epoch.mutable_epoch()->set_lr(5);
  epoch.mutable_epoch()->set_best(true);
  EXPECT_EQ(DescribeEvent(epoch),
            "| end of epoch   2 | time: 12.50s | valid loss  5.50 | valid ppl   244.69 | next lr 5.00 | best");

  JobEvent state;
  state.mutable_state()->set_state(QUEUED);
  EXPECT_EQ(DescribeEvent(state), "| job QUEUED");
  state.mutable_state()->set_message("restart 1 of 3");
  EXPECT_EQ(DescribeEvent(state), "| job QUEUED: restart 1 of 3");

  JobEvent checkpoint;
  checkpoint.mutable_checkpoint()->set_id("e0001-s00000010");
  checkpoint.mutable_checkpoint()->set_size_bytes(1234);
  checkpoint.mutable_checkpoint()->set_crc32(0xabcdef01);
  EXPECT_EQ(DescribeEvent(checkpoint), "| checkpoint e0001-s00000010 kept (1234 bytes, crc32 abcdef01)");

  JobEvent test;
  test.mutable_test()->set_test_loss(4.5);
  test.mutable_test()->set_test_ppl(90.02);
  EXPECT_EQ(DescribeEvent(test), "| End of training | test loss  4.50 | test ppl    90.02");
  EXPECT_EQ(DescribeEvent(JobEvent()), "");
}

TEST(JobTextTest, TheJobTableIsAligned) {
  Job a;
  a.set_id("job-1");
  a.set_state(SUCCEEDED);
  a.set_name("quickstart");
  a.set_attempt(1);
  a.set_epoch(3);
  a.set_best_val_ppl(7.0712);
  a.set_test_ppl(7.28);
  Job b;
  b.set_id("job-12");
  b.set_state(QUEUED);
  b.set_name("lstm");
  b.set_message("waiting for 2 cpu workers");
  const std::vector<std::string> lines = absl::StrSplit(JobTable({a, b}), '\n');
  ASSERT_EQ(lines.size(), 4u);  // Header, two rows, and the last newline.
  EXPECT_EQ(lines[3], "");
  EXPECT_THAT(lines[0], HasSubstr("JOB      STATE      NAME"));
  EXPECT_THAT(lines[1], HasSubstr("job-1    SUCCEEDED  quickstart"));
  EXPECT_THAT(lines[1], HasSubstr("7.07"));
  EXPECT_THAT(lines[2], HasSubstr("job-12   QUEUED     lstm"));
  EXPECT_THAT(lines[2], HasSubstr("-  waiting for 2 cpu workers"));
  // Every column starts at the same place in every row.
  EXPECT_EQ(lines[0].find("STATE"), lines[1].find("SUCCEEDED"));
  EXPECT_EQ(lines[0].find("STATE"), lines[2].find("QUEUED"));
  EXPECT_EQ(lines[0].find("MESSAGE"), lines[2].find("waiting"));
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

TEST(JobTextTest, TheSummarySaysStateModelProgressFiguresAndTimes) {
  Job j;
  j.set_id("job-4");
  j.set_name("quickstart");
  j.set_state(RUNNING);
  j.set_attempt(2);
  j.set_restarts(1);
  j.set_owner("bob");
  JobSpec& spec = *j.mutable_spec();
  spec.mutable_model()->set_type(LSTM);
  spec.mutable_model()->set_nlayers(2);
  spec.mutable_model()->set_nhid(128);
  spec.mutable_model()->set_emsize(128);
  spec.mutable_schedule()->set_epochs(4);
  spec.set_num_workers(2);
  j.set_epoch(2);
  j.set_global_step(140);
  TrainingMetrics& m = *j.mutable_last_training();
  m.set_batch(39);
  m.set_num_batches(100);
  m.set_loss(5.125);
  m.set_ppl(168.2);
  m.set_lr(20);
  m.set_tokens_per_second(5120);
  m.set_ms_per_batch(35.25);
  j.set_best_val_ppl(150.5);
  j.set_num_checkpoints(3);
  j.set_submitted_unix_seconds(1764547200);  // 2025-12-01 00:00:00 UTC
  j.set_started_unix_seconds(1764547210);
  EXPECT_EQ(JobSummary(j, absl::FromUnixSeconds(1764547210 + 3723)),
            "job-4  quickstart  RUNNING  (attempt 2, 1 restarts, owner bob)\n"
            "  model     LSTM, 2 layers x 128, emsize 128; 4 epochs on 2 workers\n"
            "  progress  epoch 2/4, step 140 (batch 40/100 of the epoch)\n"
            "  training  loss 5.12 | ppl 168.20 | lr 20.00 | 5120 tok/s | 35.2 ms/batch\n"
            "  best      valid ppl 150.50 | test ppl - | 3 checkpoints kept\n"
            "  times     submitted 2025-12-01 00:00:00 UTC, running for 1:02:03\n");
  j.set_state(FAILED);
  j.set_message("worker w1 died");
  j.set_finished_unix_seconds(1764547210 + 60);
  const std::string done = JobSummary(j, absl::FromUnixSeconds(1764547210 + 3723));
  EXPECT_THAT(done, ::testing::HasSubstr("  message   worker w1 died\n"));
  EXPECT_THAT(done, ::testing::HasSubstr(", ran 0:01:00\n"));
}

}  // namespace
}  // namespace ddlm
