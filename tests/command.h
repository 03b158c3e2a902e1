#ifndef DDLM_TESTS_COMMAND_H_
#define DDLM_TESTS_COMMAND_H_

// Test helper: run a system command to completion and describe what it did, for the
// tests that drive outside tools (ip, Slurm's clients).

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/subprocess.h"

namespace ddlm::testing {

struct CommandResult {
  int code = -1;
  std::string output;  // stdout and stderr together.
};

inline CommandResult Command(const std::vector<std::string>& argv) {
  CommandResult result;
  result.code = RunBinary(argv, &result.output);
  return result;
}

// "`ARGV` exited with CODE: OUTPUT", for a failed assertion's message.
inline std::string Describe(const std::vector<std::string>& argv, const CommandResult& r) {
  return absl::StrCat("`", absl::StrJoin(argv, " "), "` exited with ", r.code, ": ", r.output);
}

}  // namespace ddlm::testing

#endif  // DDLM_TESTS_COMMAND_H_
