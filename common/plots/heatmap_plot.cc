#include "common/plots/heatmap_plot.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/plots/gnuplot.h"

namespace ddlm {
namespace {

constexpr int kMinPixels = 600;
constexpr int kMaxPixels = 2000;
// Room around the cells for the tick labels, the colour bar and its label, the title.
constexpr int kWidthMargin = 260;
constexpr int kHeightMargin = 220;
// The room one tick label takes along its axis, at the 10 pt tick font.
constexpr int kTickPixels = 14;
// Cells at this fraction of the colour range or above are light (the palette runs from
// dark to light), so their text is black; below it, white.
constexpr double kLightFraction = 0.6;

// Cells with text need room for a few characters.
int CellPixels(const Heatmap& h) { return h.cell_labels.empty() ? 20 : 40; }

int SidePixels(size_t cells, int cell_pixels, int margin) {
  const double wanted = static_cast<double>(cells) * cell_pixels + margin;
  return static_cast<int>(std::clamp(wanted, static_cast<double>(kMinPixels), static_cast<double>(kMaxPixels)));
}

int WidthPixels(const Heatmap& h) { return SidePixels(h.x_labels.size(), CellPixels(h), kWidthMargin); }
int HeightPixels(const Heatmap& h) { return SidePixels(h.y_labels.size(), CellPixels(h), kHeightMargin); }

// gnuplot cannot colour an infinite value (a log-probability of -inf) either.
bool HasValue(double v) { return std::isfinite(v); }

double ValueAt(const Heatmap& h, size_t i) { return i < h.values.size() ? h.values[i] : NAN; }

std::string Number(double v) { return HasValue(v) ? absl::StrFormat("%.9g", v) : "NaN"; }

struct ValueRange {
  bool any = false;
  double lo = 0;
  double hi = 0;
};

ValueRange RangeOf(const Heatmap& h) {
  ValueRange r;
  for (double v : h.values) {
    if (!HasValue(v)) continue;
    r.lo = r.any ? std::min(r.lo, v) : v;
    r.hi = r.any ? std::max(r.hi, v) : v;
    r.any = true;
  }
  return r;
}

// A cell's text as one tab-separated data field that gnuplot reads back as written: in
// double quotes, inside which its data reader takes \\ and \" as escapes (unquoted, a
// text that starts and ends with a quote would lose them); a tab or line break, which
// would end the field or the line, as a space.
std::string DataText(const std::string& s) {
  return absl::StrCat(
      "\"", absl::StrReplaceAll(s, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\t", " "}, {"\n", " "}, {"\r", " "}}), "\"");
}

// gnuplot's explicit tick list for `labels` at 0, 1, ...: every `step`-th, the step
// chosen so that the labels written fit side by side in `pixels`.
std::string TickList(const std::vector<std::string>& labels, int pixels) {
  const size_t fit = static_cast<size_t>(std::max(1, pixels / kTickPixels));
  const size_t step = std::max<size_t>(1, (labels.size() + fit - 1) / fit);
  std::string out = "(";
  for (size_t i = 0; i < labels.size(); i += step) {
    absl::StrAppend(&out, i == 0 ? "" : ", ", GnuplotQuoted(labels[i]), " ", i);
  }
  return out + ")";
}

}  // namespace

absl::Status CheckHeatmap(const Heatmap& heatmap) {
  const size_t cols = heatmap.x_labels.size();
  const size_t rows = heatmap.y_labels.size();
  if (cols == 0) return absl::InvalidArgumentError("the heatmap has no columns (x_labels is empty)");
  if (rows == 0) return absl::InvalidArgumentError("the heatmap has no rows (y_labels is empty)");
  if (heatmap.values.size() != rows * cols) {
    return absl::InvalidArgumentError(absl::StrCat("the heatmap's values has ", heatmap.values.size(),
                                                   " entries, not rows x columns = ", rows, " x ", cols, " = ",
                                                   rows * cols, " (y_labels x x_labels)"));
  }
  if (!heatmap.cell_labels.empty() && heatmap.cell_labels.size() != rows * cols) {
    return absl::InvalidArgumentError(absl::StrCat("the heatmap's cell_labels has ", heatmap.cell_labels.size(),
                                                   " entries, not rows x columns = ", rows, " x ", cols, " = ",
                                                   rows * cols, " (or none)"));
  }
  return absl::OkStatus();
}

std::string HeatmapData(const Heatmap& heatmap) {
  const size_t cols = heatmap.x_labels.size();
  const size_t rows = heatmap.y_labels.size();
  // gnuplot draws no image narrower than 2 x 2: a single row or column gets a blank
  // neighbour, outside the axis ranges the program sets.
  const size_t image_cols = std::max<size_t>(cols, 2);
  const size_t image_rows = std::max<size_t>(rows, 2);
  std::string out;
  for (size_t r = 0; r < image_rows; ++r) {
    for (size_t c = 0; c < image_cols; ++c) {
      const double v = r < rows && c < cols ? ValueAt(heatmap, r * cols + c) : NAN;
      absl::StrAppend(&out, c, "\t", r, "\t", Number(v), "\n");
    }
    out += "\n";  // One scan line of the image per row.
  }
  out += "\n";  // Two blank lines end a block (gnuplot's `index`).
  if (heatmap.cell_labels.empty()) return out;
  const ValueRange range = RangeOf(heatmap);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      const size_t i = r * cols + c;
      if (i >= heatmap.cell_labels.size()) break;
      const double v = ValueAt(heatmap, i);
      // A blank cell's text is on the white background; an equal-valued heatmap is
      // drawn in the middle of the palette.
      const double fraction = !HasValue(v) ? 1 : range.hi > range.lo ? (v - range.lo) / (range.hi - range.lo) : 0.5;
      const int rgb = fraction >= kLightFraction ? 0x000000 : 0xffffff;
      absl::StrAppend(&out, c, "\t", r, "\t", rgb, "\t", DataText(heatmap.cell_labels[i]), "\n");
    }
  }
  out += "\n\n";
  return out;
}

std::string HeatmapGnuplotProgram(const Heatmap& heatmap, const std::string& data_path, const std::string& png_path) {
  const size_t cols = heatmap.x_labels.size();
  const size_t rows = heatmap.y_labels.size();
  const int width = WidthPixels(heatmap);
  const int height = HeightPixels(heatmap);
  const std::string data = GnuplotQuoted(data_path);
  std::string p;
  // noenhanced: labels are anyone's text, written as given (`_` is no subscript).
  absl::StrAppend(&p, "set terminal pngcairo noenhanced size ", width, ",", height, " font \"sans,10\"\n",
                  "set output ", GnuplotQuoted(png_path), "\n");
  if (!heatmap.title.empty()) absl::StrAppend(&p, "set title ", GnuplotQuoted(heatmap.title), "\n");
  absl::StrAppend(&p, "set datafile separator \"\\t\"\n", "unset key\n",
                  // Cell (column c, row r) is centred on (c, r); row 0 at the top.
                  absl::StrFormat("set xrange [-0.5:%d.5]\n", cols - 1),
                  absl::StrFormat("set yrange [%d.5:-0.5]\n", rows - 1),
                  "set xtics rotate by 90 right scale 0 nomirror ", TickList(heatmap.x_labels, width - kWidthMargin),
                  "\n", "set ytics scale 0 nomirror ", TickList(heatmap.y_labels, height - kHeightMargin), "\n");
  if (!heatmap.value_label.empty()) absl::StrAppend(&p, "set cblabel ", GnuplotQuoted(heatmap.value_label), "\n");
  const ValueRange range = RangeOf(heatmap);
  // The range the text colours were chosen for (HeatmapData); gnuplot widens an empty
  // one itself, and needs one when nothing has a value.
  if (!range.any) {
    p += "set cbrange [0:1]\n";
  } else if (range.hi > range.lo) {
    absl::StrAppend(&p, "set cbrange [", Number(range.lo), ":", Number(range.hi), "]\n");
  }
  // Viridis: dark to light, readable in grey and by the colour-blind.
  absl::StrAppend(&p,
                  "set palette defined (0 \"#440154\", 1 \"#3b528b\", 2 \"#21908d\", 3 \"#5dc963\", 4 "
                  "\"#fde725\")\n",
                  "plot ", data, " index 0 using 1:2:3 with image");
  if (!heatmap.cell_labels.empty()) {
    absl::StrAppend(&p, ", ", data, " index 1 using 1:2:4:3 with labels textcolor rgb variable font \"sans,7\"");
  }
  p += "\n";
  return p;
}

absl::Status PlotHeatmap(const Heatmap& heatmap, const std::string& png_path, const std::string& gnuplot) {
  if (absl::Status s = CheckHeatmap(heatmap); !s.ok()) return s;
  return RunGnuplot(HeatmapGnuplotProgram(heatmap, kGnuplotDataPath, png_path), HeatmapData(heatmap), png_path,
                    gnuplot);
}

}  // namespace ddlm
