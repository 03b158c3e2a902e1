#include "coordinator/worker_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ddlm {

absl::Status WorkerRegistry::Validate(const WorkerRef& ref, const std::string& host, const std::string& device) {
  if (ref.worker_id().empty()) return absl::InvalidArgumentError("worker.worker_id is empty");
  if (ref.incarnation() == 0) return absl::InvalidArgumentError("worker.incarnation must be nonzero");
  if (host.empty()) return absl::InvalidArgumentError("host is empty");
  if (device.empty()) return absl::InvalidArgumentError("device is empty");
  return absl::OkStatus();
}

absl::StatusOr<std::optional<WorkerEntry>> WorkerRegistry::Register(const WorkerRef& ref,
                                                                    const std::string& host,
                                                                    const std::string& device,
                                                                    absl::Time now) {
  if (absl::Status valid = Validate(ref, host, device); !valid.ok()) return valid;
  std::optional<WorkerEntry> replaced;
  auto it = workers_.find(ref.worker_id());
  if (it != workers_.end() && it->second.info.state() == BUSY) replaced = it->second;
  WorkerEntry entry;
  entry.info.set_worker_id(ref.worker_id());
  entry.info.set_incarnation(ref.incarnation());
  entry.info.set_host(host);
  entry.info.set_device(device);
  entry.info.set_state(IDLE);
  entry.info.set_last_heartbeat_unix_micros(absl::ToUnixMicros(now));
  entry.registration_order = next_order_++;
  workers_[ref.worker_id()] = std::move(entry);
  heartbeats_.Track(ref.worker_id(), ref.incarnation(), now);
  return replaced;
}

absl::StatusOr<WorkerEntry*> WorkerRegistry::Find(const WorkerRef& ref) {
  auto it = workers_.find(ref.worker_id());
  if (it == workers_.end()) {
    return absl::NotFoundError(absl::StrCat("worker.worker_id '", ref.worker_id(), "' is not registered"));
  }
  WorkerEntry& w = it->second;
  if (w.info.incarnation() != ref.incarnation()) {
    return absl::AbortedError(absl::StrCat("worker '", ref.worker_id(), "' incarnation ",
                                           ref.incarnation(), " was replaced by incarnation ",
                                           w.info.incarnation(), "; register again"));
  }
  if (w.info.state() == DEAD) {
    return absl::AbortedError(absl::StrCat("worker '", ref.worker_id(), "' incarnation ",
                                           ref.incarnation(),
                                           " was declared dead (missed heartbeats); register again"));
  }
  return &w;
}

absl::Status WorkerRegistry::Heartbeat(const WorkerRef& ref, absl::Time now) {
  return heartbeats_.Beat(ref, now);
}

std::vector<WorkerEntry> WorkerRegistry::ExpireStale(absl::Time now) {
  std::vector<WorkerEntry> expired;
  for (const std::string& id : heartbeats_.Expire(now, timeout_)) {
    auto it = workers_.find(id);
    if (it == workers_.end() || it->second.info.state() == DEAD) continue;
    expired.push_back(it->second);
    it->second.info.set_state(DEAD);
    it->second.dead_since = now;
    it->second.outbox.clear();
  }
  return expired;
}

void WorkerRegistry::MarkDead(const std::string& worker_id, absl::Time now) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  it->second.info.set_state(DEAD);
  it->second.dead_since = now;
  it->second.outbox.clear();
  heartbeats_.MarkDead(worker_id);
}

std::vector<std::string> WorkerRegistry::PruneDead(absl::Time now, absl::Duration grace) {
  std::vector<std::string> pruned;
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->second.info.state() == DEAD && now - it->second.dead_since > grace) {
      pruned.push_back(it->first);
      heartbeats_.Forget(it->first);
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  return pruned;
}

std::vector<WorkerEntry*> WorkerRegistry::Idle() {
  std::vector<WorkerEntry*> idle;
  for (auto& [id, w] : workers_) {
    if (w.info.state() == IDLE) idle.push_back(&w);
  }
  std::sort(idle.begin(), idle.end(), [](const WorkerEntry* a, const WorkerEntry* b) {
    return a->registration_order < b->registration_order;
  });
  return idle;
}

WorkerEntry* WorkerRegistry::Get(const std::string& worker_id) {
  auto it = workers_.find(worker_id);
  return it == workers_.end() ? nullptr : &it->second;
}

std::vector<WorkerInfo> WorkerRegistry::List() {
  std::vector<WorkerInfo> out;
  for (const auto& [id, w] : workers_) {
    WorkerInfo& info = out.emplace_back(w.info);
    if (std::optional<absl::Time> last = heartbeats_.LastBeat(id)) {
      info.set_last_heartbeat_unix_micros(absl::ToUnixMicros(*last));
    }
  }
  return out;
}

int WorkerRegistry::live_count() const {
  int n = 0;
  for (const auto& [id, w] : workers_) n += w.info.state() != DEAD;
  return n;
}

}  // namespace ddlm
