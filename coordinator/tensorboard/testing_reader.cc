#include "coordinator/tensorboard/testing_reader.h"

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "coordinator/tensorboard/crc32c.h"

namespace ddlm {
namespace {

uint64_t LittleEndian(absl::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes.size(); ++i) value |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  return value;
}

}  // namespace

absl::StatusOr<std::vector<tensorboard::Event>> ReadEventFile(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (!contents.ok()) return contents.status();
  absl::string_view rest = *contents;
  std::vector<tensorboard::Event> events;
  while (!rest.empty()) {
    const std::string where = absl::StrCat(path, ", record ", events.size());
    if (rest.size() < 12) return absl::DataLossError(absl::StrCat(where, ": truncated header"));
    const absl::string_view length = rest.substr(0, 8);
    if (LittleEndian(rest.substr(8, 4)) != MaskedCrc32c(length)) {
      return absl::DataLossError(absl::StrCat(where, ": bad length CRC"));
    }
    const uint64_t n = LittleEndian(length);
    if (rest.size() < 12 + n + 4) return absl::DataLossError(absl::StrCat(where, ": truncated data"));
    const absl::string_view payload = rest.substr(12, n);
    if (LittleEndian(rest.substr(12 + n, 4)) != MaskedCrc32c(payload)) {
      return absl::DataLossError(absl::StrCat(where, ": bad data CRC"));
    }
    tensorboard::Event event;
    if (!event.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      return absl::DataLossError(absl::StrCat(where, ": not an Event"));
    }
    events.push_back(std::move(event));
    rest.remove_prefix(12 + n + 4);
  }
  return events;
}

}  // namespace ddlm
