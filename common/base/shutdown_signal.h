#ifndef DDLM_COMMON_BASE_SHUTDOWN_SIGNAL_H_
#define DDLM_COMMON_BASE_SHUTDOWN_SIGNAL_H_

// SIGINT and SIGTERM as a request to shut down cleanly, whichever thread the kernel
// delivers them to. Blocking the signals in main and sigwait-ing for them is not enough:
// libraries start threads before main (OpenBLAS starts its pool from a constructor),
// those threads do not block the signals, and one of them taking SIGTERM kills the
// process without a word. Instead, a handler on every thread writes the signal's number
// to a pipe (write(2) is async-signal-safe), and WaitForShutdownSignal reads it.
//
// Threading: InstallShutdownSignalHandlers once, early in main; then any one thread may
// wait.

#include "absl/status/status.h"

namespace ddlm {

absl::Status InstallShutdownSignalHandlers();

// Blocks until SIGINT or SIGTERM arrives (after InstallShutdownSignalHandlers) and
// returns its number, or until WakeShutdownWaiter and returns 0. Only the first signal is
// caught: a second one has its default effect (a second Ctrl-C ends a shutdown that
// hangs).
int WaitForShutdownSignal();

// Makes WaitForShutdownSignal return 0: the process is ending of its own accord, and the
// thread that waits can be joined.
void WakeShutdownWaiter();

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_SHUTDOWN_SIGNAL_H_
