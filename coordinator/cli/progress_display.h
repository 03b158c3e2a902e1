#ifndef DDLM_COORDINATOR_CLI_PROGRESS_DISPLAY_H_
#define DDLM_COORDINATOR_CLI_PROGRESS_DISPLAY_H_

// How `ddlm watch` and `ddlm launch` show a job's events as they come. Plain: one line
// per event (DescribeEvent), for logs and pipes. Live, on a terminal: the same lines for
// everything but training metrics, and below them one status line redrawn in place:
//
//   epoch 2/4 [########..........] 120/298 | 12345 tok/s | loss 5.12 | ppl 167.3 | ETA epoch 0:35, job 2:10
//
// The ETAs come from the latest interval's ms per batch: the rest of this epoch, and the
// rest of the job's epochs (validation not counted).
//
// Threading: not thread-safe; one follower writes to `out`.

#include <cstdio>
#include <optional>
#include <string>

#include "proto/job.pb.h"

namespace ddlm {

class ProgressDisplay {
 public:
  // `total_epochs`: the job's schedule.epochs (0: unknown); `width`: the terminal's
  // columns (the status line is cut to fit).
  ProgressDisplay(std::FILE* out, bool live, int total_epochs, int width = 100);

  void Show(const JobEvent& event);
  // Clears the status line (live); call once the job has ended.
  void End();

  // The status line for `m` (no newline), at most `width` - 1 characters.
  static std::string StatusLine(const TrainingMetrics& m, int total_epochs, int width);

 private:
  void Redraw();

  std::FILE* out_;
  bool live_;
  int total_epochs_;
  int width_;
  std::optional<TrainingMetrics> last_;
};

// Whether `out` is a terminal, and its width in columns (80 if it cannot tell).
bool IsTerminal(std::FILE* out);
int TerminalWidth(std::FILE* out);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_CLI_PROGRESS_DISPLAY_H_
