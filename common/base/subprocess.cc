#include "common/base/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace ddlm {

Subprocess::Subprocess(std::vector<std::string> argv, SubprocessOptions options) : options_(std::move(options)) {
  if (!options_.log_path.empty()) {
    log_fd_ = open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd_ < 0) std::perror(options_.log_path.c_str());  // The child still runs.
  }
  // The child's environment, built before fork (nothing but async-signal-safe calls
  // may follow fork in a process with threads).
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const std::string& extra : options_.env) replaced |= extra.substr(0, extra.find('=')) == name;
    if (!replaced) environment.push_back(entry);
  }
  environment.insert(environment.end(), options_.env.begin(), options_.env.end());
  std::vector<char*> envp;
  for (std::string& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const std::string exec_failed = "cannot exec " + argv[0] + "\n";
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    std::perror("pipe");
    std::abort();
  }
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    execve(args[0], args.data(), envp.data());
    (void)!write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    _exit(127);
  }
  close(fds[1]);
  fd_ = fds[0];
  reader_ = std::thread([this] { ReadAll(); });
}

Subprocess::~Subprocess() {
  if (exit_code_ < 0 && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (reader_.joinable()) reader_.join();  // The pipe closes once the child is gone.
  if (fd_ >= 0) close(fd_);
  if (log_fd_ >= 0) close(log_fd_);
}

void Subprocess::ReadAll() {
  char chunk[4096];
  while (true) {
    ssize_t n = read(fd_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n > 0 && log_fd_ >= 0) {
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = write(log_fd_, chunk + done, static_cast<size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;  // A full disk loses log lines, not the child.
        done += w;
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (n <= 0) {
      eof_ = true;
      changed_.notify_all();
      return;
    }
    if (options_.capture) output_.append(chunk, static_cast<size_t>(n));
    changed_.notify_all();
  }
}

bool Subprocess::WaitForLine(const std::string& needle, std::string* line, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    size_t at = output_.find(needle, cursor_);
    if (at != std::string::npos) {
      const size_t end = output_.find('\n', at);
      if (end != std::string::npos || eof_) {
        const size_t begin = output_.rfind('\n', at);
        const size_t from = begin == std::string::npos ? 0 : begin + 1;
        const size_t to = end == std::string::npos ? output_.size() : end;
        if (line != nullptr) *line = output_.substr(from, to - from);
        cursor_ = to;
        return true;
      }
    }
    if (eof_) return false;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return false;
  }
}

std::string Subprocess::output() const {
  std::lock_guard<std::mutex> lock(mu_);
  return output_;
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && exit_code_ < 0) kill(pid_, sig);
}

int Subprocess::Stop() {
  Signal(SIGTERM);
  return Wait();
}

int Subprocess::Wait() {
  if (exit_code_ >= 0) return exit_code_;
  int status = 0;
  waitpid(pid_, &status, 0);
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (reader_.joinable()) reader_.join();
  return exit_code_;
}

std::optional<int> Subprocess::WaitForExit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (std::optional<int> code = TryWait()) return code;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::nullopt;
    // Woken by its output (or its end); else looked at again every 10 ms: a child that
    // closed its output early may still be running.
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(10)));
  }
}

std::optional<int> Subprocess::TryWait() {
  if (exit_code_ >= 0) return exit_code_;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (reader_.joinable()) reader_.join();
  return exit_code_;
}

int RunBinary(const std::vector<std::string>& argv, std::string* output) {
  Subprocess p(argv);
  int code = p.Wait();
  *output = p.output();
  return code;
}

std::string SelfExecutable() {
  char self[4096] = {};
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  return n > 0 ? std::string(self, static_cast<size_t>(n)) : "";
}

std::string SiblingBinary(const std::string& self, const std::string& self_package, const std::string& package,
                          const std::string& name) {
  const std::string dir = self.substr(0, self.rfind('/'));  // bazel-bin/<self_package>
  const std::string suffix = "/" + self_package;
  if (dir.size() >= suffix.size() && dir.compare(dir.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return dir.substr(0, dir.size() - self_package.size()) + package + "/" + name;
  }
  return dir + "/" + name;
}

std::string WithoutGlogLines(const std::string& output) {
  std::string kept, line;
  std::istringstream in(output);
  while (std::getline(in, line)) {
    const bool glog = line.size() > 9 && std::string("IWEF").find(line[0]) != std::string::npos &&
                      std::all_of(line.begin() + 1, line.begin() + 9, ::isdigit);
    if (!glog) kept += line + "\n";
  }
  return kept;
}

}  // namespace ddlm
