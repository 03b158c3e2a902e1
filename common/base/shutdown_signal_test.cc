#include "common/base/shutdown_signal.h"

#include <signal.h>

#include <cstdlib>
#include <thread>

#include "gtest/gtest.h"

namespace ddlm {
namespace {

// The signal reaches the waiter wherever the kernel delivers it: here it is sent to a
// thread other than the one waiting (as when a library thread takes a process signal).
TEST(ShutdownSignalTest, ASignalOnAnyThreadWakesTheWaiter) {
  ASSERT_TRUE(InstallShutdownSignalHandlers().ok());
  int got = 0;
  std::thread waiter([&] { got = WaitForShutdownSignal(); });
  std::thread other([] { ::pthread_kill(::pthread_self(), SIGTERM); });
  other.join();
  waiter.join();
  EXPECT_EQ(got, SIGTERM);

  ASSERT_TRUE(InstallShutdownSignalHandlers().ok());  // Only the first signal is caught.
  std::thread again([&] { got = WaitForShutdownSignal(); });
  ::raise(SIGINT);
  again.join();
  EXPECT_EQ(got, SIGINT);
}

TEST(ShutdownSignalTest, WakeEndsTheWaitWithZero) {
  ASSERT_TRUE(InstallShutdownSignalHandlers().ok());
  int got = -1;
  std::thread waiter([&] { got = WaitForShutdownSignal(); });
  WakeShutdownWaiter();
  waiter.join();
  EXPECT_EQ(got, 0);
}

// The handler is reset after the first signal: a second SIGTERM ends the process.
TEST(ShutdownSignalTest, ASecondSignalHasItsDefaultEffect) {
  EXPECT_EXIT(
      {
        if (!InstallShutdownSignalHandlers().ok()) std::_Exit(1);
        ::raise(SIGTERM);  // Caught: written to the pipe.
        ::raise(SIGTERM);  // Not caught.
        std::_Exit(0);
      },
      ::testing::KilledBySignal(SIGTERM), "");
}

}  // namespace
}  // namespace ddlm
