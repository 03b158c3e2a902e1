#ifndef DDLM_COMMON_TESTING_SHELL_H_
#define DDLM_COMMON_TESTING_SHELL_H_

// Test-only: running bash from a test, for the tests of the repository's shell scripts
// (tests/gpu: gates.sh, run.sh). The scripts are the test's `data`.

#include <string>

namespace ddlm {

// A `data` file of the running test, by its repository path: as it is from the current
// directory (Bazel runs a test in its workspace's runfiles root), else under
// $TEST_SRCDIR/$TEST_WORKSPACE.
std::string RunfilePath(const std::string& relative);

// `s` as one single-quoted shell word.
std::string ShellQuote(const std::string& s);

struct ShellResult {
  int exit_code = -1;  // -1: bash could not be started, or did not exit.
  std::string out;     // stdout and stderr, together.
};

// bash -c SCRIPT, with stdin from /dev/null; blocks until it exits.
ShellResult RunBash(const std::string& script);

}  // namespace ddlm

#endif  // DDLM_COMMON_TESTING_SHELL_H_
