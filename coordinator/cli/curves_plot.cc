#include "coordinator/cli/curves_plot.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/plots/gnuplot.h"

namespace ddlm {
namespace {

void AppendBlock(std::string& out, const std::vector<CurvePoint>& points) {
  if (points.empty()) out += "nan nan\n";  // gnuplot needs a block to index.
  for (const CurvePoint& p : points) absl::StrAppendFormat(&out, "%.6f %.9g\n", p.epoch, p.value);
  out += "\n\n";
}

}  // namespace

JobCurves CurvesFromEvents(const Job& job, const std::vector<JobEvent>& events) {
  JobCurves curves;
  curves.title = absl::StrCat(job.id(), job.name().empty() ? "" : " ", job.name(), " (",
                              ModelType_Name(job.spec().model().type()), ")");
  for (const JobEvent& e : events) {
    if (e.has_training()) {
      const TrainingMetrics& m = e.training();
      if (m.num_batches() <= 0) continue;
      const double x = m.epoch() - 1 + static_cast<double>(m.batch() + 1) / static_cast<double>(m.num_batches());
      curves.train_ppl.push_back({x, m.ppl()});
      curves.lr.push_back({x, m.lr()});
    } else if (e.has_epoch()) {
      curves.val_ppl.push_back({static_cast<double>(e.epoch().epoch()), e.epoch().val_ppl()});
    } else if (e.has_test()) {
      curves.test_ppl = e.test().test_ppl();
    }
  }
  return curves;
}

std::string CurveData(const JobCurves& curves) {
  std::string out;
  AppendBlock(out, curves.train_ppl);
  AppendBlock(out, curves.val_ppl);
  AppendBlock(out, curves.lr);
  return out;
}

std::string GnuplotProgram(const JobCurves& curves, const std::string& data_path, const std::string& png_path) {
  const std::string data = GnuplotQuoted(data_path);
  std::string p;
  absl::StrAppend(&p, "set terminal pngcairo noenhanced size 1000,750 font \"sans,11\"\n", "set output ",
                  GnuplotQuoted(png_path), "\n", "set multiplot layout 2,1 title ", GnuplotQuoted(curves.title), "\n",
                  "set grid\n", "set key top right\n", "set xrange [0:*]\n",
                  // The same margins in both panels, so that their x axes line up.
                  "set lmargin at screen 0.09\n", "set rmargin at screen 0.97\n");
  // Top: perplexity (log scale), 70% of the height.
  absl::StrAppend(&p, "set size 1,0.68\nset origin 0,0.30\n", "set logscale y\n", "set ylabel \"perplexity\"\n",
                  "set format x \"\"\n");
  std::string plot = absl::StrCat("plot ", data,
                                  " index 0 using 1:2 with lines lw 1.5 lc rgb \"#1f77b4\" title "
                                  "\"training ppl\", ",
                                  data,
                                  " index 1 using 1:2 with linespoints lw 2 pt 7 lc rgb \"#d62728\" title "
                                  "\"validation ppl\"");
  if (curves.test_ppl > 0) {
    absl::StrAppendFormat(&plot, ", %.9g with lines dt 2 lw 1.5 lc rgb \"#2ca02c\" title \"test ppl %.2f\"",
                          curves.test_ppl, curves.test_ppl);
  }
  absl::StrAppend(&p, plot, "\n");
  // Bottom: learning rate.
  absl::StrAppend(&p, "set size 1,0.30\nset origin 0,0\n", "unset logscale y\n", "set ylabel \"learning rate\"\n",
                  "set xlabel \"epoch\"\n", "set format x \"%g\"\n", "set yrange [0:*]\n",
                  "set offsets 0, 0, graph 0.2, 0\n", "set key bottom left\n", "plot ", data,
                  " index 2 using 1:2 with steps lw 2 lc rgb \"#9467bd\" title \"lr\"\n", "unset multiplot\n");
  return p;
}

absl::Status PlotCurves(const JobCurves& curves, const std::string& png_path, const std::string& gnuplot) {
  if (curves.train_ppl.empty() && curves.val_ppl.empty()) {
    return absl::FailedPreconditionError("the job has no training metrics or validation results to plot yet");
  }
  return RunGnuplot(GnuplotProgram(curves, kGnuplotDataPath, png_path), CurveData(curves), png_path, gnuplot);
}

}  // namespace ddlm
