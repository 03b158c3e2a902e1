#include "coordinator/cli/progress_display.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/cli/job_text.h"

namespace ddlm {
namespace {

constexpr char kClearLine[] = "\r\033[K";
constexpr int kBarCells = 20;

std::string Duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

}  // namespace

ProgressDisplay::ProgressDisplay(std::FILE* out, bool live, int total_epochs, int width)
    : out_(out), live_(live), total_epochs_(total_epochs), width_(width) {}

std::string ProgressDisplay::StatusLine(const TrainingMetrics& m, int total_epochs, int width) {
  const int64_t done = std::min(m.batch() + 1, m.num_batches());
  const double fraction = m.num_batches() > 0 ? static_cast<double>(done) / static_cast<double>(m.num_batches()) : 0;
  const int filled = static_cast<int>(fraction * kBarCells);
  const std::string bar = absl::StrCat("[", std::string(filled, '#'), std::string(kBarCells - filled, '.'), "]");
  const double seconds_per_batch = m.ms_per_batch() / 1000.0;
  const double epoch_left = static_cast<double>(m.num_batches() - done) * seconds_per_batch;
  std::string line = absl::StrFormat("epoch %d%s %s %d/%d | %.0f tok/s | loss %.2f | ppl %.1f | ETA epoch %s",
                                     m.epoch(), total_epochs > 0 ? absl::StrCat("/", total_epochs) : "", bar, done,
                                     m.num_batches(), m.tokens_per_second(), m.loss(), m.ppl(), Duration(epoch_left));
  if (total_epochs > 0) {
    const double job_left =
        epoch_left + static_cast<double>(std::max(0, total_epochs - m.epoch())) * m.num_batches() * seconds_per_batch;
    absl::StrAppend(&line, ", job ", Duration(job_left));
  }
  if (width > 1 && static_cast<int>(line.size()) > width - 1) line.resize(width - 1);
  return line;
}

void ProgressDisplay::Show(const JobEvent& event) {
  if (!live_) {
    std::fprintf(out_, "%s\n", DescribeEvent(event).c_str());
    std::fflush(out_);
    return;
  }
  if (event.has_training()) {
    last_ = event.training();
  } else {
    // A line of its own above the status line, which then comes back below it.
    std::fprintf(out_, "%s%s\n", kClearLine, DescribeEvent(event).c_str());
  }
  Redraw();
}

void ProgressDisplay::Redraw() {
  if (last_) std::fprintf(out_, "%s%s", kClearLine, StatusLine(*last_, total_epochs_, width_).c_str());
  std::fflush(out_);
}

void ProgressDisplay::End() {
  if (!live_) return;
  if (last_) std::fprintf(out_, "%s", kClearLine);
  std::fflush(out_);
}

bool IsTerminal(std::FILE* out) { return ::isatty(::fileno(out)) == 1; }

int TerminalWidth(std::FILE* out) {
  winsize size{};
  if (::ioctl(::fileno(out), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

}  // namespace ddlm
