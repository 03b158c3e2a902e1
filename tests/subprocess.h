#ifndef DDLM_TESTS_SUBPROCESS_H_
#define DDLM_TESTS_SUBPROCESS_H_

// Test helper: runs a real binary with its stdout and stderr on one pipe, lets the
// test wait for lines of it (blocking, no sleeps), signal it, and reaps it. A reader
// thread drains the pipe all the time, so a chatty child never blocks on a full pipe.
// The destructor kills and reaps a child that is still running, so no test leaves
// processes behind. Threading: one test thread uses a Subprocess; the reader thread
// is internal.

#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ddlm::testing {

class Subprocess {
 public:
  explicit Subprocess(std::vector<std::string> argv);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Waits for a complete line containing `needle` after the previous match (or the
  // start); returns false if the output ends first. On success, `line` (if given)
  // receives the line.
  bool WaitForLine(const std::string& needle, std::string* line = nullptr);
  void Signal(int sig);
  // Waits for the output to end and the child to exit; returns the exit code (128 +
  // signal if killed).
  int Wait();
  // Everything the child wrote so far.
  std::string output() const;
  pid_t pid() const { return pid_; }

 private:
  void ReadAll();

  pid_t pid_ = -1;
  int fd_ = -1;
  int exit_code_ = -1;
  size_t cursor_ = 0;  // Where the next WaitForLine starts looking.
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::string output_;  // Guarded by mu_.
  bool eof_ = false;    // Guarded by mu_.
  std::thread reader_;
};

// Runs a binary to completion; returns its exit code and puts its output in `output`.
int RunBinary(const std::vector<std::string>& argv, std::string* output);

}  // namespace ddlm::testing

#endif  // DDLM_TESTS_SUBPROCESS_H_
