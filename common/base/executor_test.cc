#include "common/base/executor.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"

namespace ddlm {
namespace {

TEST(ThreadExecutorTest, RunsTasksInOrderOnItsOwnThread) {
  std::vector<int> order;
  std::vector<bool> on_thread;
  std::vector<std::thread::id> ids;
  {
    ThreadExecutor executor("test-executor");
    EXPECT_FALSE(executor.OnThread());
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(executor.Schedule([&, i] {
        order.push_back(i);
        on_thread.push_back(executor.OnThread());
        ids.push_back(std::this_thread::get_id());
      }));
    }
    executor.Shutdown();  // Runs what is queued.
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(on_thread, (std::vector<bool>{true, true, true}));
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_NE(ids[0], std::this_thread::get_id());
  EXPECT_EQ(ids[0], ids[2]);
}

TEST(ThreadExecutorTest, TheCallerNeverWaitsForATask) {
  ThreadExecutor executor("test-executor");
  absl::Notification started, release;
  bool second_ran = false;
  ASSERT_TRUE(executor.Schedule([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();
  // The first task is still running: scheduling another returns at once (it would hang
  // here otherwise), and the new one waits its turn.
  ASSERT_TRUE(executor.Schedule([&] { second_ran = true; }));
  release.Notify();
  executor.Shutdown();
  EXPECT_TRUE(second_ran);
}

TEST(ThreadExecutorTest, ATaskMayScheduleAnotherAndShutdownRefusesNewOnes) {
  ThreadExecutor executor("test-executor");
  std::vector<int> order;
  absl::Notification done;
  ASSERT_TRUE(executor.Schedule([&] {
    order.push_back(1);
    EXPECT_TRUE(executor.Schedule([&] {
      order.push_back(2);
      done.Notify();
    }));
  }));
  done.WaitForNotification();
  executor.Shutdown();
  executor.Shutdown();  // Twice is harmless.
  EXPECT_FALSE(executor.Schedule([&] { order.push_back(3); }));
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(InlineExecutorTest, RunsATaskAtOnceOnTheCallersThreadUntilShutDown) {
  InlineExecutor executor;
  std::thread::id ran_on;
  ASSERT_TRUE(executor.Schedule([&] { ran_on = std::this_thread::get_id(); }));
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  executor.Shutdown();
  bool ran = false;
  EXPECT_FALSE(executor.Schedule([&] { ran = true; }));
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace ddlm
