// Fuzz target: the token-id codec of shards (int32 little-endian). Whatever decodes
// must encode back to the same bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "common/base/sharding.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<int64_t>> ids = ddlm::DecodeTokenIds(bytes);
  if (!ids.ok()) return 0;
  const std::string again = ddlm::EncodeTokenIds(*ids, 0, static_cast<int64_t>(ids->size()));
  if (again != bytes) std::abort();  // The codec lost or changed something.
  return 0;
}
