#include "coordinator/tensorboard/event_file_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "coordinator/tensorboard/crc32c.h"
#include "proto/tensorboard_event.pb.h"

namespace ddlm {
namespace {

void AppendLittleEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

double Seconds(absl::Time t) { return absl::ToDoubleSeconds(t - absl::UnixEpoch()); }

}  // namespace

std::string TfRecord(absl::string_view payload) {
  std::string length;
  AppendLittleEndian(length, payload.size(), 8);
  std::string record = length;
  AppendLittleEndian(record, MaskedCrc32c(length), 4);
  record.append(payload.data(), payload.size());
  AppendLittleEndian(record, MaskedCrc32c(payload), 4);
  return record;
}

absl::StatusOr<std::unique_ptr<EventFileWriter>> EventFileWriter::Create(const std::string& dir, absl::Time now,
                                                                         absl::string_view host) {
  if (absl::Status s = MakeDirectories(dir); !s.ok()) return s;
  // Several writers of one run in one second (a coordinator restarted quickly) each get
  // a file of their own.
  static std::atomic<int> files{0};
  const std::string path = absl::StrCat(dir, "/events.out.tfevents.", absl::ToUnixSeconds(now), ".", host, ".",
                                        ::getpid(), ".", files.fetch_add(1));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  std::unique_ptr<EventFileWriter> writer(new EventFileWriter(fd, path));
  tensorboard::Event version;
  version.set_wall_time(Seconds(now));
  version.set_file_version("brain.Event:2");
  if (absl::Status s = writer->WriteRecord(version.SerializeAsString()); !s.ok()) return s;
  return writer;
}

EventFileWriter::~EventFileWriter() { ::close(fd_); }

absl::Status EventFileWriter::WriteScalars(int64_t step, absl::Time wall_time,
                                           const std::vector<std::pair<std::string, double>>& scalars) {
  tensorboard::Event event;
  event.set_wall_time(Seconds(wall_time));
  event.set_step(step);
  for (const auto& [tag, value] : scalars) {
    tensorboard::Summary::Value* v = event.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
  }
  return WriteRecord(event.SerializeAsString());
}

absl::Status EventFileWriter::WriteRecord(const std::string& payload) {
  // One write(2) per record with O_APPEND: a reader never sees half a record followed
  // by another's bytes.
  return WriteAll(fd_, TfRecord(payload), path_);
}

}  // namespace ddlm
