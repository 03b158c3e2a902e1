#include "common/shutdown_signal.h"

#include <signal.h>

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

  std::thread again([&] { got = WaitForShutdownSignal(); });
  ::raise(SIGINT);
  again.join();
  EXPECT_EQ(got, SIGINT);
}

}  // namespace
}  // namespace ddlm
