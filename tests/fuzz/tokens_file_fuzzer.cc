// Fuzz target: the coordinator's tokens file (--tokens_file) and the authorization
// metadata checked against it.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "coordinator/access_control.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ddlm::AccessControl> access = ddlm::AccessControl::Parse(text, "fuzz");
  if (!access.ok()) return 0;
  // The last line's first field, as a bearer token.
  const size_t start = text.rfind('\n', text.size() > 0 ? text.size() - 1 : 0);
  const std::string header = "Bearer " + std::string(text.substr(start == absl::string_view::npos ? 0 : start + 1, 32));
  (void)access->Authenticate(header);
  return 0;
}
