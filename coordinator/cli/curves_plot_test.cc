#include "coordinator/cli/curves_plot.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

std::vector<JobEvent> TwoEpochs() {
  std::vector<JobEvent> events;
  JobEvent state;
  state.mutable_state()->set_state(RUNNING);
  events.push_back(state);
  for (int epoch = 1; epoch <= 2; ++epoch) {
    for (int b : {49, 99}) {
      JobEvent e;
      TrainingMetrics& m = *e.mutable_training();
      m.set_epoch(epoch);
      m.set_batch(b);
      m.set_num_batches(100);
      m.set_ppl(1000.0 / (epoch * (b + 1)));
      m.set_lr(epoch == 1 ? 20 : 5);
      events.push_back(e);
    }
    JobEvent end;
    end.mutable_epoch()->set_epoch(epoch);
    end.mutable_epoch()->set_val_ppl(100.0 / epoch);
    events.push_back(end);
  }
  JobEvent test;
  test.mutable_test()->set_test_ppl(48.5);
  events.push_back(test);
  return events;
}

Job NamedJob() {
  Job job;
  job.set_id("job-7");
  job.set_name("tiny \"lstm\"");
  job.mutable_spec()->mutable_model()->set_type(LSTM);
  return job;
}

TEST(CurvesPlotTest, CurvesAreOnAFractionalEpochAxis) {
  const JobCurves c = CurvesFromEvents(NamedJob(), TwoEpochs());
  EXPECT_EQ(c.title, "job-7 tiny \"lstm\" (LSTM)");
  ASSERT_EQ(c.train_ppl.size(), 4u);
  EXPECT_DOUBLE_EQ(c.train_ppl[0].epoch, 0.5);
  EXPECT_DOUBLE_EQ(c.train_ppl[1].epoch, 1.0);
  EXPECT_DOUBLE_EQ(c.train_ppl[3].epoch, 2.0);
  EXPECT_DOUBLE_EQ(c.train_ppl[2].value, 1000.0 / 100);
  ASSERT_EQ(c.val_ppl.size(), 2u);
  EXPECT_DOUBLE_EQ(c.val_ppl[1].epoch, 2);
  EXPECT_DOUBLE_EQ(c.val_ppl[1].value, 50);
  ASSERT_EQ(c.lr.size(), 4u);
  EXPECT_DOUBLE_EQ(c.lr[2].value, 5);
  EXPECT_DOUBLE_EQ(c.test_ppl, 48.5);
}

TEST(CurvesPlotTest, DataHasThreeIndexedBlocksAndTheProgramEscapesTheTitle) {
  const JobCurves c = CurvesFromEvents(NamedJob(), TwoEpochs());
  const std::string data = CurveData(c);
  EXPECT_EQ(data,
            "0.500000 20\n1.000000 10\n1.500000 10\n2.000000 5\n\n\n"
            "1.000000 100\n2.000000 50\n\n\n"
            "0.500000 20\n1.000000 20\n1.500000 5\n2.000000 5\n\n\n");
  const std::string program = GnuplotProgram(c, "/tmp/d.dat", "/tmp/o.png");
  EXPECT_TRUE(absl::StrContains(program, "set output '/tmp/o.png'")) << program;
  EXPECT_TRUE(absl::StrContains(program, "title 'job-7 tiny \"lstm\" (LSTM)'")) << program;
  EXPECT_TRUE(absl::StrContains(program, "test ppl 48.50")) << program;
}

TEST(CurvesPlotTest, NothingToPlotIsNamed) {
  const absl::Status s = PlotCurves(CurvesFromEvents(NamedJob(), {}), "/tmp/never.png");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(s.message(), "nothing") || absl::StrContains(s.message(), "no training")) << s;
}

TEST(CurvesPlotTest, AMissingGnuplotIsNamed) {
  const absl::Status s = PlotCurves(CurvesFromEvents(NamedJob(), TwoEpochs()),
                                    absl::StrCat(std::getenv("TEST_TMPDIR"), "/x.png"), "/nonexistent/gnuplot");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "gnuplot-nox")) << s;
}

// A job's name is anyone's text: gnuplot must draw it, never run it (gnuplot runs
// `backquoted` commands inside double-quoted strings).
TEST(CurvesPlotTest, AJobNameIsNeverRunByGnuplot) {
  const std::string dir = std::getenv("TEST_TMPDIR");
  Job job = NamedJob();
  job.set_name(absl::StrCat("`touch ", dir, "/pwned` it's\n\"x\" $(touch ", dir, "/pwned2) _^{}"));
  const absl::Status s = PlotCurves(CurvesFromEvents(job, TwoEpochs()), dir + "/named.png");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(ReadFile(dir + "/pwned").ok());
  EXPECT_FALSE(ReadFile(dir + "/pwned2").ok());
  EXPECT_TRUE(ReadFile(dir + "/named.png").ok());
}

// Debian's gnuplot draws a real PNG (setup.sh installs gnuplot-nox).
TEST(CurvesPlotTest, GnuplotWritesAPng) {
  const std::string png = absl::StrCat(std::getenv("TEST_TMPDIR"), "/curves.png");
  const absl::Status s = PlotCurves(CurvesFromEvents(NamedJob(), TwoEpochs()), png);
  ASSERT_TRUE(s.ok()) << s;
  absl::StatusOr<std::string> bytes = ReadFile(png);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ASSERT_GT(bytes->size(), 5000u);  // Two panels with curves, axes and text.
  EXPECT_EQ(bytes->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  // 1000 x 750: the IHDR chunk's width and height, big-endian.
  EXPECT_EQ(bytes->substr(16, 8), std::string("\0\0\x03\xe8\0\0\x02\xee", 8));
}

}  // namespace
}  // namespace ddlm
