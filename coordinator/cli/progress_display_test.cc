#include "coordinator/cli/progress_display.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace ddlm {
namespace {

TrainingMetrics Metrics(int epoch, int64_t batch) {
  TrainingMetrics m;
  m.set_epoch(epoch);
  m.set_batch(batch);
  m.set_num_batches(200);
  m.set_tokens_per_second(12345.4);
  m.set_loss(5.125);
  m.set_ppl(168.2);
  m.set_ms_per_batch(250);
  return m;
}

// Everything written to a FILE*, as a string.
class Captured {
 public:
  Captured() : file_(open_memstream(&data_, &size_)) {}
  ~Captured() {
    std::fclose(file_);
    std::free(data_);
  }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(data_, size_);
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
};

TEST(ProgressDisplayTest, StatusLineHasPositionRateLossAndBothEtas) {
  // Batch 49 of 200: 50 done, 150 left at 0.25 s = 37.5 s; then 2 more epochs of 50 s.
  EXPECT_EQ(ProgressDisplay::StatusLine(Metrics(2, 49), 4, 200),
            "epoch 2/4 [#####...............] 50/200 | 12345 tok/s | loss 5.12 | ppl 168.2 | "
            "ETA epoch 0:38, job 2:18");
}

TEST(ProgressDisplayTest, WithoutTheEpochCountThereIsNoJobEta) {
  EXPECT_EQ(ProgressDisplay::StatusLine(Metrics(1, 199), 0, 200),
            "epoch 1 [####################] 200/200 | 12345 tok/s | loss 5.12 | ppl 168.2 | ETA epoch 0:00");
}

TEST(ProgressDisplayTest, TheLineIsCutToTheTerminal) {
  EXPECT_EQ(ProgressDisplay::StatusLine(Metrics(2, 49), 4, 21), "epoch 2/4 [#####....");
}

TEST(ProgressDisplayTest, PlainPrintsOneLinePerEvent) {
  Captured out;
  ProgressDisplay display(out.file(), /*live=*/false, 4);
  JobEvent training;
  *training.mutable_training() = Metrics(1, 49);
  JobEvent state;
  state.mutable_state()->set_state(SUCCEEDED);
  display.Show(training);
  display.Show(state);
  display.End();
  const std::string text = out.text();
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_NE(text.find("| job SUCCEEDED"), std::string::npos) << text;
}

TEST(ProgressDisplayTest, LiveRedrawsTheStatusLineBelowOtherEvents) {
  Captured out;
  ProgressDisplay display(out.file(), /*live=*/true, 4, 200);
  JobEvent training;
  *training.mutable_training() = Metrics(1, 49);
  display.Show(training);
  JobEvent epoch;
  epoch.mutable_epoch()->set_epoch(1);
  epoch.mutable_epoch()->set_val_ppl(150);
  display.Show(epoch);
  display.End();
  const std::string status = ProgressDisplay::StatusLine(Metrics(1, 49), 4, 200);
  EXPECT_EQ(out.text(), "\r\033[K" + status +
                            "\r\033[K| end of epoch   1 | time:  0.00s | valid loss  0.00 | "
                            "valid ppl   150.00 | next lr 0.00\n\r\033[K" +
                            status + "\r\033[K");
}

}  // namespace
}  // namespace ddlm
