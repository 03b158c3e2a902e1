// What //bazel/tsan:absl_sync_annotations must do under --config=tsan: let TSan see the
// ordering that absl's mutexes, conditions, condition variables and notifications give
// (no report), and still catch a real race (a report). Without ThreadSanitizer there is
// nothing to check, and the tests skip.
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace {

#if defined(__SANITIZE_THREAD__)
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif

#define SKIP_WITHOUT_TSAN() \
  if (!kTsan) GTEST_SKIP() << "build with --config=tsan to run this test"

// A failing TSan report ends the process at once with this code.
constexpr char kExitOnReport[] = "halt_on_error=1:exitcode=66";

// Runs `fn` in a child process under TSan with halt_on_error and reports what it printed.
template <typename Fn>
void ExpectRaceReported(Fn fn) {
  EXPECT_EXIT(
      {
        fn();
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(66), "ThreadSanitizer: data race");
}

TEST(AbslSyncAnnotationsTest, MutexOrdersWhatItGuards) {
  SKIP_WITHOUT_TSAN();
  absl::Mutex mu;
  long counter = 0;  // Guarded by mu: plain memory, so only the annotations order it.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (i % 2 == 0) {
          absl::MutexLock lock(&mu);
          ++counter;
        } else {
          while (!mu.TryLock()) {
          }
          ++counter;
          mu.Unlock();
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  absl::ReaderMutexLock lock(&mu);
  EXPECT_EQ(counter, 4000);
}

TEST(AbslSyncAnnotationsTest, AwaitConditionAndCondVarOrderHandOffs) {
  SKIP_WITHOUT_TSAN();
  absl::Mutex mu;
  absl::CondVar cv;
  int stage = 0;
  std::vector<int> data;  // Written by one thread, then the other, never at once.
  std::thread other([&] {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* s) { return *s == 1; }, &stage));
    data.push_back(2);
    stage = 2;
    cv.Signal();
  });
  {
    absl::MutexLock lock(&mu);
    data.push_back(1);
    stage = 1;
    while (stage != 2) cv.Wait(&mu);
  }
  other.join();
  mu.LockWhen(absl::Condition(
      +[](int* s) { return *s == 2; }, &stage));
  data.push_back(3);
  mu.Unlock();
  EXPECT_EQ(data, (std::vector<int>{1, 2, 3}));
}

TEST(AbslSyncAnnotationsTest, NotificationPublishesWhatWasWrittenBeforeIt) {
  SKIP_WITHOUT_TSAN();
  for (int round = 0; round < 2; ++round) {
    absl::Notification ready;
    int payload = 0;
    std::thread writer([&] {
      payload = 42;
      ready.Notify();
    });
    if (round == 0) {
      ready.WaitForNotification();
    } else {
      while (!ready.HasBeenNotified()) {
      }
    }
    EXPECT_EQ(payload, 42);
    writer.join();
  }
}

TEST(AbslSyncAnnotationsTest, AnUnguardedWriteIsStillReported) {
  SKIP_WITHOUT_TSAN();
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  setenv("TSAN_OPTIONS", kExitOnReport, 1);
  ExpectRaceReported([] {
    absl::Mutex mu;
    int shared = 0;
    std::thread other([&] {
      absl::MutexLock lock(&mu);
      ++shared;
    });
    ++shared;  // Not under mu.
    other.join();
  });
}

TEST(AbslSyncAnnotationsTest, TwoMutexesDoNotOrderEachOther) {
  SKIP_WITHOUT_TSAN();
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  setenv("TSAN_OPTIONS", kExitOnReport, 1);
  ExpectRaceReported([] {
    absl::Mutex a, b;
    int shared = 0;
    std::thread other([&] {
      absl::MutexLock lock(&a);
      ++shared;
    });
    {
      absl::MutexLock lock(&b);
      ++shared;
    }
    other.join();
  });
}

}  // namespace
