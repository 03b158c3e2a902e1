#include "coordinator/rpc/call_deadlines.h"

#include <utility>

namespace ddlm {

CallDeadlines::Registration CallDeadlines::Add(absl::Time deadline, std::function<void()> cancel) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  calls_.emplace(id, Call{deadline, std::move(cancel)});
  return Registration(this, id);
}

void CallDeadlines::Remove(uint64_t id) {
  absl::MutexLock lock(&mu_);
  calls_.erase(id);
}

int CallDeadlines::CancelExpired(absl::Time now) {
  absl::MutexLock lock(&mu_);
  int cancelled = 0;
  for (auto it = calls_.begin(); it != calls_.end();) {
    if (it->second.deadline <= now) {
      it->second.cancel();  // Under mu_: the call cannot end meanwhile.
      ++cancelled;
      it = calls_.erase(it);
    } else {
      ++it;
    }
  }
  return cancelled;
}

int CallDeadlines::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(calls_.size());
}

}  // namespace ddlm
