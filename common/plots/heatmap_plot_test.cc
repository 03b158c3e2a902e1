#include "common/plots/heatmap_plot.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/plots/gnuplot.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

// Attention of 2 query tokens (rows) over 3 key tokens (columns); the second query
// cannot see the third key (causal mask: no value).
Heatmap Attention() {
  Heatmap h;
  h.title = "layer 0 head 1";
  h.x_labels = {"the", "<unk>", "cat_s"};
  h.y_labels = {"<unk>", "sat"};
  h.values = {0.5, 0.25, 0.25, 0.9, 0.1, NAN};
  h.value_label = "attention weight";
  return h;
}

std::string TestDir() { return std::getenv("TEST_TMPDIR"); }

// The PNG's width and height, from its IHDR chunk (big-endian), after the signature.
void ExpectPng(const std::string& path, int width, int height) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ASSERT_GT(bytes->size(), 24u);
  EXPECT_EQ(bytes->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  const auto at = [&](size_t i) {
    return (static_cast<unsigned char>((*bytes)[i]) << 24) | (static_cast<unsigned char>((*bytes)[i + 1]) << 16) |
           (static_cast<unsigned char>((*bytes)[i + 2]) << 8) | static_cast<unsigned char>((*bytes)[i + 3]);
  };
  EXPECT_EQ(at(16), width);
  EXPECT_EQ(at(20), height);
}

TEST(HeatmapPlotTest, CheckHeatmapNamesWhatIsInconsistent) {
  EXPECT_TRUE(CheckHeatmap(Attention()).ok());

  Heatmap h = Attention();
  h.values.pop_back();
  absl::Status s = CheckHeatmap(h);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "values has 5 entries")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "2 x 3 = 6")) << s;

  h = Attention();
  h.cell_labels = {"a", "b"};
  s = CheckHeatmap(h);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "cell_labels has 2 entries")) << s;

  h = Attention();
  h.x_labels.clear();
  s = CheckHeatmap(h);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "no columns (x_labels")) << s;

  h = Attention();
  h.y_labels.clear();
  s = CheckHeatmap(h);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "no rows (y_labels")) << s;

  // An inconsistent heatmap is refused before gnuplot is looked for.
  h = Attention();
  h.values.push_back(1);
  EXPECT_EQ(PlotHeatmap(h, TestDir() + "/never.png", "/nonexistent/gnuplot").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HeatmapPlotTest, DataHoldsTheValuesWithNaNWhereThereIsNone) {
  Heatmap h = Attention();
  h.values[1] = -INFINITY;  // A log-probability of an impossible token: no colour either.
  EXPECT_EQ(HeatmapData(h),
            "0\t0\t0.5\n1\t0\tNaN\n2\t0\t0.25\n\n"
            "0\t1\t0.9\n1\t1\t0.1\n2\t1\tNaN\n\n\n");
}

TEST(HeatmapPlotTest, ASingleRowIsPaddedToAnImageGnuplotDraws) {
  Heatmap h;
  h.x_labels = {"a", "b"};
  h.y_labels = {"logp"};
  h.values = {-1.5, -0.25};
  EXPECT_EQ(HeatmapData(h), "0\t0\t-1.5\n1\t0\t-0.25\n\n0\t1\tNaN\n1\t1\tNaN\n\n\n");
  // The padding row is outside the y range.
  EXPECT_TRUE(absl::StrContains(HeatmapGnuplotProgram(h, "/tmp/d.dat", "/tmp/o.png"), "set yrange [0.5:-0.5]\n"));
}

TEST(HeatmapPlotTest, CellLabelsAreReadBackAsWrittenInAColourForTheirCell) {
  Heatmap h = Attention();
  h.cell_labels = {"0.50", "\"q\"", "a\\b", "x\ty", "", "-"};
  const std::string data = HeatmapData(h);
  // Values 0.1 .. 0.9: 0.5 is dark (white text), 0.9 light (black), a blank cell black.
  EXPECT_TRUE(absl::StrContains(data,
                                "\n\n\n0\t0\t16777215\t\"0.50\"\n1\t0\t16777215\t\"\\\"q\\\"\"\n"
                                "2\t0\t16777215\t\"a\\\\b\"\n0\t1\t0\t\"x y\"\n1\t1\t16777215\t\"\"\n"
                                "2\t1\t0\t\"-\"\n\n\n"))
      << data;
  const std::string program = HeatmapGnuplotProgram(h, "/tmp/d.dat", "/tmp/o.png");
  EXPECT_TRUE(absl::StrContains(program, "'/tmp/d.dat' index 1 using 1:2:4:3 with labels")) << program;
  EXPECT_TRUE(absl::StrContains(program, "set cbrange [0.1:0.9]\n")) << program;
}

// Labels are anyone's text (a token, a job's name): gnuplot must write them, never run
// them (it runs `backquoted` commands inside double-quoted strings).
TEST(HeatmapPlotTest, TheProgramQuotesEveryLabel) {
  Heatmap h = Attention();
  h.title = "it's `touch /tmp/pwned`";
  h.x_labels[1] = "don't `rm -rf x`";
  h.y_labels[1] = "a\nb";
  h.value_label = "log p('x')";
  const std::string program = HeatmapGnuplotProgram(h, "/tmp/d.dat", "/tmp/o.png");
  EXPECT_TRUE(absl::StrContains(program, "set output '/tmp/o.png'\n")) << program;
  EXPECT_TRUE(absl::StrContains(program, "set title 'it''s `touch /tmp/pwned`'\n")) << program;
  EXPECT_TRUE(absl::StrContains(program, "('the' 0, 'don''t `rm -rf x`' 1, 'cat_s' 2)")) << program;
  EXPECT_TRUE(absl::StrContains(program, "('<unk>' 0, 'a b' 1)")) << program;
  EXPECT_TRUE(absl::StrContains(program, "set cblabel 'log p(''x'')'\n")) << program;
  EXPECT_TRUE(absl::StrContains(program, "noenhanced")) << program;
  // Row 0 at the top; a pixel per cell.
  EXPECT_TRUE(absl::StrContains(program, "set yrange [1.5:-0.5]\n")) << program;
  EXPECT_TRUE(absl::StrContains(program, "plot '/tmp/d.dat' index 0 using 1:2:3 with image\n")) << program;
  EXPECT_FALSE(absl::StrContains(program, "with labels")) << program;
}

TEST(HeatmapPlotTest, ThePngGrowsWithTheMapAndIsCapped) {
  Heatmap h = Attention();
  EXPECT_TRUE(absl::StrContains(HeatmapGnuplotProgram(h, "d", "o"), "size 600,600 ")) << "small: the minimum";
  h.x_labels.assign(40, "x");
  h.y_labels.assign(30, "y");
  EXPECT_TRUE(absl::StrContains(HeatmapGnuplotProgram(h, "d", "o"), "size 1060,820 "));
  h.x_labels.assign(1000, "x");
  h.y_labels.assign(500, "y");
  const std::string program = HeatmapGnuplotProgram(h, "d", "o");
  EXPECT_TRUE(absl::StrContains(program, "size 2000,2000 "));
  // 1740 pixels of columns fit 124 labels: every 9th of 1000 is written.
  EXPECT_TRUE(absl::StrContains(program, "('x' 0, 'x' 9, 'x' 18,")) << program.substr(0, 400);
}

// Debian's gnuplot draws a real PNG (setup.sh installs gnuplot-nox), and writes the
// labels without running them.
TEST(HeatmapPlotTest, GnuplotWritesAPng) {
  Heatmap h = Attention();
  h.x_labels[0] = absl::StrCat("`touch ", TestDir(), "/pwned`");
  h.cell_labels = {"`x`", "\"q\"", "it's", "$(touch " + TestDir() + "/pwned2)", "_^{}", ""};
  const std::string png = TestDir() + "/attention.png";
  const absl::Status s = PlotHeatmap(h, png);
  ASSERT_TRUE(s.ok()) << s;
  ExpectPng(png, 600, 600);
  EXPECT_FALSE(ReadFile(TestDir() + "/pwned").ok());
  EXPECT_FALSE(ReadFile(TestDir() + "/pwned2").ok());
}

// gnuplot draws no image smaller than 2 x 2 by itself; nor one with no value at all.
TEST(HeatmapPlotTest, GnuplotDrawsOneCellAndOneWithNoValue) {
  Heatmap h;
  h.x_labels = {"a"};
  h.y_labels = {"b"};
  h.values = {0.5};
  ASSERT_TRUE(PlotHeatmap(h, TestDir() + "/one.png").ok());
  ExpectPng(TestDir() + "/one.png", 600, 600);
  h.values = {NAN};
  h.cell_labels = {"?"};
  const absl::Status s = PlotHeatmap(h, TestDir() + "/none.png");
  ASSERT_TRUE(s.ok()) << s;
  ExpectPng(TestDir() + "/none.png", 600, 600);
}

TEST(HeatmapPlotTest, AMissingGnuplotIsNamed) {
  const absl::Status s = PlotHeatmap(Attention(), TestDir() + "/x.png", "/nonexistent/gnuplot");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "/nonexistent/gnuplot")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "gnuplot-nox")) << s;
}

// gnuplot's own message comes back; and a program that exits 0 without drawing is no
// success.
TEST(HeatmapPlotTest, RunGnuplotNamesWhatWentWrong) {
  const std::string png = TestDir() + "/run.png";
  absl::Status s =
      RunGnuplot("set terminal pngcairo\nset output " + GnuplotQuoted(png) + "\nplot no_such_thing\n", "", png);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "no_such_thing")) << s;
  s = RunGnuplot("print 1\n", "", TestDir() + "/unwritten.png");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "wrote no PNG to " + TestDir() + "/unwritten.png")) << s;
  // The program finds its data where it names kGnuplotDataPath.
  s = RunGnuplot(absl::StrCat("set terminal pngcairo\nset output ", GnuplotQuoted(png), "\nplot ",
                              GnuplotQuoted(kGnuplotDataPath), " using 1:2 with lines\n"),
                 "0 1\n1 2\n", png);
  ASSERT_TRUE(s.ok()) << s;
  ExpectPng(png, 640, 480);
}

}  // namespace
}  // namespace ddlm
