#include "coordinator/worker_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ddlm {

absl::StatusOr<std::optional<WorkerEntry>> WorkerRegistry::Register(const WorkerRef& ref,
                                                                    const std::string& host,
                                                                    const std::string& device,
                                                                    absl::Time now) {
  if (ref.worker_id().empty()) return absl::InvalidArgumentError("worker.worker_id is empty");
  if (ref.incarnation() == 0) return absl::InvalidArgumentError("worker.incarnation must be nonzero");
  if (host.empty()) return absl::InvalidArgumentError("host is empty");
  if (device.empty()) return absl::InvalidArgumentError("device is empty");
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
  entry.last_heartbeat = now;
  entry.registration_order = next_order_++;
  workers_[ref.worker_id()] = std::move(entry);
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
  absl::StatusOr<WorkerEntry*> w = Find(ref);
  if (!w.ok()) return w.status();
  (*w)->last_heartbeat = now;
  (*w)->info.set_last_heartbeat_unix_micros(absl::ToUnixMicros(now));
  return absl::OkStatus();
}

std::vector<WorkerEntry> WorkerRegistry::ExpireStale(absl::Time now) {
  std::vector<WorkerEntry> expired;
  for (auto& [id, w] : workers_) {
    if (w.info.state() != DEAD && now - w.last_heartbeat > timeout_) {
      expired.push_back(w);
      w.info.set_state(DEAD);
      w.outbox.clear();
    }
  }
  return expired;
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

std::vector<WorkerInfo> WorkerRegistry::List() const {
  std::vector<WorkerInfo> out;
  for (const auto& [id, w] : workers_) out.push_back(w.info);
  return out;
}

int WorkerRegistry::live_count() const {
  int n = 0;
  for (const auto& [id, w] : workers_) n += w.info.state() != DEAD;
  return n;
}

}  // namespace ddlm
