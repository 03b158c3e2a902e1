#ifndef DDLM_COMMON_BASE_CLOCK_H_
#define DDLM_COMMON_BASE_CLOCK_H_

// Time as a dependency: code that decides by time (heartbeat expiry) takes a Clock, so
// tests move time by hand instead of sleeping.
//
// Threading: RealClock is thread-safe; FakeClock is thread-safe.

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ddlm {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
};

class RealClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
};

class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch()) : now_(start) {}
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_CLOCK_H_
