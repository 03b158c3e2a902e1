#include "tests/subprocess.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace ddlm::testing {

Subprocess::Subprocess(std::vector<std::string> argv) {
  int fds[2];
  if (pipe(fds) != 0) {
    std::perror("pipe");
    std::abort();
  }
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    std::fprintf(stderr, "cannot exec %s\n", args[0]);
    _exit(127);
  }
  close(fds[1]);
  fd_ = fds[0];
}

Subprocess::~Subprocess() {
  if (exit_code_ < 0 && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (fd_ >= 0) close(fd_);
}

bool Subprocess::ReadLine(std::string* line) {
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      *line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      output_ += *line + "\n";
      return true;
    }
    char chunk[4096];
    ssize_t n = read(fd_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!buffer_.empty()) {
        *line = buffer_;
        output_ += buffer_;
        buffer_.clear();
        return true;
      }
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

bool Subprocess::WaitForLine(const std::string& needle) {
  std::string line;
  while (ReadLine(&line)) {
    if (line.find(needle) != std::string::npos) return true;
  }
  return false;
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && exit_code_ < 0) kill(pid_, sig);
}

int Subprocess::Wait() {
  std::string line;
  while (ReadLine(&line)) {
  }
  if (exit_code_ >= 0) return exit_code_;
  int status = 0;
  waitpid(pid_, &status, 0);
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

int RunBinary(const std::vector<std::string>& argv, std::string* output) {
  Subprocess p(argv);
  int code = p.Wait();
  *output = p.output();
  return code;
}

}  // namespace ddlm::testing
