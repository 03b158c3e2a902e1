#ifndef DDLM_COORDINATOR_RPC_CALL_DEADLINES_H_
#define DDLM_COORDINATOR_RPC_CALL_DEADLINES_H_

// Server-side deadlines for the calls that move files (FetchCheckpoint, DownloadShard,
// DownloadCheckpoint, UploadCheckpoint): a client that stalls, or sets no deadline of
// its own, would otherwise hold a server thread for as long as it likes. A call is
// registered with its deadline while it runs; CancelExpired (the coordinator's sweeper
// calls it every heartbeat interval) cancels those past it, and the call then ends
// CANCELLED.
//
// Threading: thread-safe (its own mutex). `cancel` callbacks run under that mutex, so
// a call cannot finish (and free what its callback touches) while it is being
// cancelled; they must not block or call back into this class.

#include <cstdint>
#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ddlm {

class CallDeadlines {
 public:
  // Unregisters the call when it goes out of scope.
  class Registration {
   public:
    Registration(CallDeadlines* owner, uint64_t id) : owner_(owner), id_(id) {}
    ~Registration() {
      if (owner_ != nullptr) owner_->Remove(id_);
    }
    Registration(Registration&& other) noexcept : owner_(other.owner_), id_(other.id_) { other.owner_ = nullptr; }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    Registration& operator=(Registration&&) = delete;

   private:
    CallDeadlines* owner_;
    uint64_t id_;
  };

  // `cancel` (e.g. the call's ServerContext::TryCancel) runs once if the call is still
  // registered at `deadline`.
  Registration Add(absl::Time deadline, std::function<void()> cancel) ABSL_LOCKS_EXCLUDED(mu_);
  // Cancels (and forgets) every call whose deadline is at or before `now`; returns how
  // many.
  int CancelExpired(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  int size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Call {
    absl::Time deadline;
    std::function<void()> cancel;
  };
  void Remove(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Call> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_RPC_CALL_DEADLINES_H_
