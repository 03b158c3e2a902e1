#include "common/base/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "absl/synchronization/mutex.h"

namespace ddlm {
namespace failpoint_internal {

bool ParseSpec(absl::string_view spec, std::vector<std::pair<std::string, int>>* points, std::string* error) {
  points->clear();
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    for (absl::string_view& part : parts) part = absl::StripAsciiWhitespace(part);
    int hit = 0;
    if (parts.size() != 2 || parts[0].empty() || !absl::SimpleAtoi(parts[1], &hit) || hit < 1) {
      *error = absl::StrCat("DDLM_FAILPOINTS: \"", item, "\" is not NAME:N (N >= 1)");
      return false;
    }
    points->emplace_back(std::string(parts[0]), hit);
  }
  return true;
}

}  // namespace failpoint_internal

namespace {

struct Armed {
  std::string error;                     // A malformed DDLM_FAILPOINTS.
  std::multimap<std::string, int> stop;  // Name -> the hits to stop at.
  absl::Mutex mu;
  std::map<std::string, int> hits ABSL_GUARDED_BY(mu);
};

// Null when DDLM_FAILPOINTS is unset or empty: nothing is armed.
Armed* LoadArmed() {
  const char* spec = std::getenv("DDLM_FAILPOINTS");
  if (spec == nullptr || *spec == '\0') return nullptr;
  auto* armed = new Armed;
  std::vector<std::pair<std::string, int>> points;
  if (failpoint_internal::ParseSpec(spec, &points, &armed->error)) {
    for (auto& [name, hit] : points) armed->stop.emplace(std::move(name), hit);
  }
  return armed;
}

void WriteLine(const std::string& line) {
  // One write(2), so that the line is whole on a pipe shared with other threads' logs.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace

void Failpoint(absl::string_view name) {
  static Armed* const armed = LoadArmed();
  if (armed == nullptr) return;
  if (!armed->error.empty()) {
    WriteLine(armed->error + "\n");
    std::_Exit(2);
  }
  int hit = 0;
  {
    absl::MutexLock lock(&armed->mu);
    hit = ++armed->hits[std::string(name)];
  }
  auto [begin, end] = armed->stop.equal_range(std::string(name));
  for (auto it = begin; it != end; ++it) {
    if (it->second != hit) continue;
    WriteLine(absl::StrCat("ddlm failpoint ", name, " hit ", hit, " (pid ", ::getpid(), ")\n"));
    ::raise(SIGSTOP);
    return;
  }
}

}  // namespace ddlm
