#ifndef DDLM_TESTS_SUBPROCESS_H_
#define DDLM_TESTS_SUBPROCESS_H_

// Test helper: runs a real binary with its stdout and stderr on one pipe, lets the
// test read it line by line (blocking reads, no sleeps), signal it, and reaps it. The
// destructor kills and reaps a child that is still running, so no test leaves
// processes behind. Not thread-safe.

#include <sys/types.h>

#include <string>
#include <vector>

namespace ddlm::testing {

class Subprocess {
 public:
  explicit Subprocess(std::vector<std::string> argv);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Reads lines until one contains `needle`; returns false at end of output. Every
  // line read is appended to output().
  bool WaitForLine(const std::string& needle);
  void Signal(int sig);
  // Reads the rest of the output and returns the exit code (128 + signal if killed).
  int Wait();
  const std::string& output() const { return output_; }

 private:
  bool ReadLine(std::string* line);

  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
  std::string output_;
  int exit_code_ = -1;
};

// Runs a binary to completion; returns its exit code and puts its output in `output`.
int RunBinary(const std::vector<std::string>& argv, std::string* output);

}  // namespace ddlm::testing

#endif  // DDLM_TESTS_SUBPROCESS_H_
