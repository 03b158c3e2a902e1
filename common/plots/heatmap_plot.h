#ifndef DDLM_COMMON_PLOTS_HEATMAP_PLOT_H_
#define DDLM_COMMON_PLOTS_HEATMAP_PLOT_H_

// A heatmap as a PNG, drawn by gnuplot (Debian's gnuplot-nox, its pngcairo terminal):
// a language model's attention map (a row per query token, a column per key token) or
// its log-probabilities (a row per candidate, a column per position). One cell per value:
//   rows     top to bottom, row 0 at the top, labelled on the left (y_labels);
//   columns  left to right, labelled underneath (x_labels, rotated);
//   colour   the value, on a colour bar at the right (value_label); a cell with no
//            value (NaN, or infinite) is blank;
//   text     cell_labels, if given, small in each cell, white on the dark colours and
//            black on the light ones.
// Labels are written as given (no enhanced-text markup: `_`, `^` and `<unk>` print as
// they are); where there are more than fit side by side, every k-th is written. The PNG
// grows with the rows and columns, 600 to 2000 pixels a side.
//
// Threading: free functions.

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ddlm {

struct Heatmap {
  std::string title;
  std::vector<std::string> x_labels;     // One per column, left to right.
  std::vector<std::string> y_labels;     // One per row, top to bottom.
  std::vector<double> values;            // Rows * cols, row-major; NaN: no value (drawn blank).
  std::string value_label;               // The colour bar's label, e.g. "attention weight".
  std::vector<std::string> cell_labels;  // Empty, or rows * cols texts written in the cells.
};

// OK if `heatmap` can be drawn; else INVALID_ARGUMENT naming what is inconsistent (no
// rows or columns, a field of the wrong size).
absl::Status CheckHeatmap(const Heatmap& heatmap);

// The data file HeatmapGnuplotProgram reads (tab-separated): block 0 the cells, a line
// "column row value" each and a blank line after each row, NaN where there is no value
// (padded with a blank row or column where there is only one: gnuplot draws an image of
// at least 2 x 2); block 1, with cell_labels only, "column row text-colour "text"".
// For a heatmap CheckHeatmap accepts.
std::string HeatmapData(const Heatmap& heatmap);

// The gnuplot program that draws `heatmap` from the data file `data_path` (written by
// HeatmapData) into `png_path`. For a heatmap CheckHeatmap accepts.
std::string HeatmapGnuplotProgram(const Heatmap& heatmap, const std::string& data_path, const std::string& png_path);

// Draws `heatmap` into `png_path` with `gnuplot` (found on PATH); the error names what
// went wrong (an inconsistent heatmap, no gnuplot, gnuplot's own message, no PNG).
absl::Status PlotHeatmap(const Heatmap& heatmap, const std::string& png_path, const std::string& gnuplot = "gnuplot");

}  // namespace ddlm

#endif  // DDLM_COMMON_PLOTS_HEATMAP_PLOT_H_
