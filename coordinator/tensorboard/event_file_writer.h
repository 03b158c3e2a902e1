#ifndef DDLM_COORDINATOR_TENSORBOARD_EVENT_FILE_WRITER_H_
#define DDLM_COORDINATOR_TENSORBOARD_EVENT_FILE_WRITER_H_

// One TensorBoard event file: TFRecord framing (length, masked CRC-32C of the length,
// a serialized tensorboard.Event, masked CRC-32C of it), a file_version record first,
// then scalar summaries. The file is named events.out.tfevents.<seconds>.<host>.<pid>.<n>,
// as TensorBoard looks for "tfevents" in a run directory's file names. A run (a
// directory) may hold several files; TensorBoard reads them all in name order.
//
// Event files are derived data (the job's event log is the record), so writes are
// flushed to the kernel, not fsynced.
//
// Threading: not thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ddlm {

class EventFileWriter {
 public:
  // Creates `dir` (and its parents) if needed and a new event file in it.
  static absl::StatusOr<std::unique_ptr<EventFileWriter>> Create(const std::string& dir, absl::Time now,
                                                                 absl::string_view host);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // One event holding every (tag, value) at `step`.
  absl::Status WriteScalars(int64_t step, absl::Time wall_time,
                            const std::vector<std::pair<std::string, double>>& scalars);

  const std::string& path() const { return path_; }

 private:
  EventFileWriter(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  absl::Status WriteRecord(const std::string& payload);

  int fd_;
  std::string path_;
};

// Frames `payload` as one TFRecord (exposed for tests).
std::string TfRecord(absl::string_view payload);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_TENSORBOARD_EVENT_FILE_WRITER_H_
