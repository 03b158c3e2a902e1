#include "common/base/shutdown_signal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace ddlm {
namespace {

int pipe_fds[2] = {-1, -1};

void OnSignal(int sig) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(sig);
  (void)!::write(pipe_fds[1], &byte, 1);
  errno = saved;
}

}  // namespace

absl::Status InstallShutdownSignalHandlers() {
  if (pipe_fds[0] < 0) {
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return absl::InternalError(absl::StrCat("cannot make the signal pipe: ", std::strerror(errno)));
    }
    // A handler must never block: with the pipe full, a byte more is not needed anyway.
    ::fcntl(pipe_fds[1], F_SETFL, ::fcntl(pipe_fds[1], F_GETFL) | O_NONBLOCK);
  }
  struct sigaction action {};
  action.sa_handler = &OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART | SA_RESETHAND;
  for (int sig : {SIGINT, SIGTERM}) {
    if (::sigaction(sig, &action, nullptr) != 0) {
      return absl::InternalError(absl::StrCat("cannot handle signal ", sig, ": ", std::strerror(errno)));
    }
  }
  // A mask inherited from whoever started this process must not hide them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
  return absl::OkStatus();
}

void WakeShutdownWaiter() {
  const unsigned char zero = 0;
  (void)!::write(pipe_fds[1], &zero, 1);
}

int WaitForShutdownSignal() {
  unsigned char byte = 0;
  while (true) {
    const ssize_t n = ::read(pipe_fds[0], &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return 0;  // The pipe is gone: cannot happen while the process lives.
  }
}

}  // namespace ddlm
