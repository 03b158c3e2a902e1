// Fuzz target: the coordinator's tokens file (--tokens_file) and the authorization
// metadata checked against it. Whatever parses, every token it names must authenticate
// as its line's name and role, and a header with a character changed must not.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "coordinator/access_control.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ddlm::AccessControl> access = ddlm::AccessControl::Parse(text, "fuzz");
  if (!access.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 3) std::abort();  // Parse accepted a line it should not have.
    absl::StatusOr<ddlm::Caller> caller = access->Authenticate("Bearer " + std::string(fields[0]));
    if (!caller.ok() || caller->name != fields[2] || ddlm::RoleName(caller->role) != fields[1]) std::abort();
    std::string wrong(fields[0]);
    wrong.back() = wrong.back() == 'x' ? 'y' : 'x';
    absl::StatusOr<ddlm::Caller> other = access->Authenticate("Bearer " + wrong);
    // Another token of the file may be exactly that string; otherwise it must fail.
    if (other.ok() && text.find(wrong) == absl::string_view::npos) std::abort();
  }
  return 0;
}
