#include "coordinator/heartbeat_table.h"

#include "absl/strings/str_cat.h"

namespace ddlm {

void HeartbeatTable::Track(const std::string& worker_id, uint64_t incarnation, absl::Time now) {
  absl::MutexLock lock(&mu_);
  entries_[worker_id] = Entry{incarnation, false, now};
}

absl::Status HeartbeatTable::Beat(const WorkerRef& ref, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(ref.worker_id());
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("worker.worker_id '", ref.worker_id(), "' is not registered"));
  }
  Entry& e = it->second;
  if (e.incarnation != ref.incarnation()) {
    return absl::AbortedError(absl::StrCat("worker '", ref.worker_id(), "' incarnation ", ref.incarnation(),
                                           " was replaced by incarnation ", e.incarnation, "; register again"));
  }
  if (e.dead) {
    return absl::AbortedError(absl::StrCat("worker '", ref.worker_id(), "' incarnation ", ref.incarnation(),
                                           " was declared dead (missed heartbeats); register again"));
  }
  e.last = now;
  return absl::OkStatus();
}

void HeartbeatTable::MarkDead(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  if (auto it = entries_.find(worker_id); it != entries_.end()) it->second.dead = true;
}

void HeartbeatTable::Forget(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  entries_.erase(worker_id);
}

std::vector<std::string> HeartbeatTable::Expire(absl::Time now, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> expired;
  for (auto& [id, e] : entries_) {
    if (!e.dead && now - e.last > timeout) {
      e.dead = true;
      expired.push_back(id);
    }
  }
  return expired;
}

std::optional<absl::Time> HeartbeatTable::LastBeat(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(worker_id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.last;
}

}  // namespace ddlm
