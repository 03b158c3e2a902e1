#ifndef DDLM_COORDINATOR_CLI_CURVES_PLOT_H_
#define DDLM_COORDINATOR_CLI_CURVES_PLOT_H_

// `ddlm plot JOB --out curves.png`: a job's training curves as a PNG, drawn by gnuplot
// (Debian's gnuplot-nox, its pngcairo terminal). Two panels on one x axis, epochs
// (fractional for training intervals):
//   top     training perplexity per log interval and validation perplexity per epoch
//           (log scale), the test perplexity as a line;
//   bottom  the learning rate.
//
// Threading: free functions.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/job.pb.h"

namespace ddlm {

struct CurvePoint {
  double epoch = 0;
  double value = 0;
};

struct JobCurves {
  std::string title;
  std::vector<CurvePoint> train_ppl;  // At epoch - 1 + (batch + 1) / batches per epoch.
  std::vector<CurvePoint> val_ppl;    // At the end of each epoch.
  std::vector<CurvePoint> lr;         // Per log interval, as training used it.
  double test_ppl = 0;                // 0: none.
};

// The curves in `events` (a job's events, in order). A resumed attempt that retrains an
// epoch overwrites nothing: its points follow the earlier ones.
JobCurves CurvesFromEvents(const Job& job, const std::vector<JobEvent>& events);

// The gnuplot program that draws `curves` from the data file `data_path` (written by
// WriteCurveData) into `png_path`.
std::string GnuplotProgram(const JobCurves& curves, const std::string& data_path, const std::string& png_path);

// The data file GnuplotProgram reads: three blocks (train, val, lr), two blank lines apart.
std::string CurveData(const JobCurves& curves);

// Draws `curves` into `png_path` with `gnuplot` (found on PATH); the error names what
// went wrong (no gnuplot, no points, gnuplot's own message).
absl::Status PlotCurves(const JobCurves& curves, const std::string& png_path, const std::string& gnuplot = "gnuplot");

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_CLI_CURVES_PLOT_H_
