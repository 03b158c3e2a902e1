#ifndef DDLM_COMMON_BASE_SUBPROCESS_H_
#define DDLM_COMMON_BASE_SUBPROCESS_H_

// ddlm's one way to start another program (`ddlm launch`, the tests, the benchmarks):
// runs a binary with its stdout and stderr on one pipe, lets the caller wait for lines
// of it (blocking, no sleeps), signal it, and reap it. A reader thread drains the pipe
// all the time, so a chatty child never blocks on a full pipe; it also appends the
// output to `log_path` if given, and keeps it in memory unless `capture` is off (a
// long-running child). The destructor kills and reaps a child that is still running,
// so nothing is left behind. Threading: one thread uses a Subprocess; the reader
// thread is internal.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ddlm {

struct SubprocessOptions {
  std::string log_path;  // Also append the output here ("" : nowhere).
  bool capture = true;   // Keep the output for WaitForLine and output().
  // "NAME=value" entries added to the child's environment (replacing NAME if this
  // process has it); the rest is inherited.
  std::vector<std::string> env;
};

class Subprocess {
 public:
  explicit Subprocess(std::vector<std::string> argv, SubprocessOptions options = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Waits for a complete line containing `needle` after the previous match (or the
  // start); returns false if the output ends first (or is not captured) or `timeout`
  // passes, so that a child that never says it never hangs its caller. On success,
  // `line` (if given) receives the line.
  bool WaitForLine(const std::string& needle, std::string* line = nullptr,
                   std::chrono::milliseconds timeout = std::chrono::minutes(2));
  void Signal(int sig);
  // SIGTERM, then Wait(): the child's clean shutdown.
  int Stop();
  // Waits for the output to end and the child to exit; returns the exit code (128 +
  // signal if killed).
  int Wait();
  // The exit code if the child has exited (reaping it), without waiting; else nullopt.
  std::optional<int> TryWait();
  // Waits at most `timeout` for the child to exit, and reaps it; nullopt if the time ran
  // out first (signal it and Wait). (Once it exited, its output must end too: a process
  // it left behind that still holds the output is not supported.)
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout);
  // Everything the child wrote so far.
  std::string output() const;
  pid_t pid() const { return pid_; }

 private:
  void ReadAll();

  const SubprocessOptions options_;
  pid_t pid_ = -1;
  int fd_ = -1;
  int log_fd_ = -1;
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

// `output` without glog's lines ("I20261203 12:00:00.000000 ..." and W/E/F alike),
// every kept line ending in a line break: what a binary printed itself, apart from its
// log on the same stream.
std::string WithoutGlogLines(const std::string& output);

// The running binary's path (/proc/self/exe); empty if it cannot be read.
std::string SelfExecutable();

// Where binary `name` of Bazel package `package` is, for the running binary `self` of
// package `self_package` in the same build ("bazel-bin/<package>/<name>"), or next to
// `self` when that is not a Bazel output tree (binaries copied to one directory).
std::string SiblingBinary(const std::string& self, const std::string& self_package, const std::string& package,
                          const std::string& name);

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_SUBPROCESS_H_
