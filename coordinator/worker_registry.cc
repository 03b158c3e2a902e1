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

absl::StatusOr<std::optional<WorkerEntry>> WorkerRegistry::Register(const WorkerRef& ref, const std::string& host,
                                                                    const std::string& device, absl::Time now) {
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
    return absl::AbortedError(absl::StrCat("worker '", ref.worker_id(), "' incarnation ", ref.incarnation(),
                                           " was replaced by incarnation ", w.info.incarnation(), "; register again"));
  }
  if (w.info.state() == DEAD) {
    return absl::AbortedError(absl::StrCat("worker '", ref.worker_id(), "' incarnation ", ref.incarnation(),
                                           " was declared dead (missed heartbeats); register again"));
  }
  return &w;
}

absl::Status WorkerRegistry::Heartbeat(const WorkerRef& ref, absl::Time now) { return heartbeats_.Beat(ref, now); }

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
  std::sort(idle.begin(), idle.end(),
            [](const WorkerEntry* a, const WorkerEntry* b) { return a->registration_order < b->registration_order; });
  return idle;
}

void WorkerRegistry::Reserve(WorkerEntry& w, const std::string& job_id, int32_t attempt, int32_t rank) {
  w.info.set_state(BUSY);
  w.info.set_job_id(job_id);
  w.info.set_rank(rank);
  w.attempt = attempt;
}

WorkerEntry* WorkerRegistry::Holding(const std::string& worker_id, const std::string& job_id, int32_t attempt) {
  WorkerEntry* w = Get(worker_id);
  if (w == nullptr || w->info.state() != BUSY || w->info.job_id() != job_id || w->attempt != attempt) {
    return nullptr;
  }
  return w;
}

bool WorkerRegistry::Release(const std::string& worker_id, const std::string& job_id, int32_t attempt) {
  WorkerEntry* w = Holding(worker_id, job_id, attempt);
  if (w == nullptr) return false;
  w->info.set_state(IDLE);
  w->info.clear_job_id();
  w->info.set_rank(0);
  w->attempt = 0;
  return true;
}

void WorkerRegistry::Send(const std::string& worker_id, WorkerCommand command) {
  if (auto it = streams_.find(worker_id); it != streams_.end()) {
    it->second->Send(command);
    return;
  }
  if (WorkerEntry* w = Get(worker_id); w != nullptr) w->outbox.push_back(std::move(command));
}

absl::Status WorkerRegistry::AttachStream(const WorkerRef& ref, StreamSink<WorkerCommand>* sink) {
  absl::StatusOr<WorkerEntry*> w = Find(ref);
  if (!w.ok()) return w.status();
  CloseStream(ref.worker_id(), absl::AbortedError("another StreamCommands call for this worker replaced this one"));
  streams_[ref.worker_id()] = sink;
  while (!(*w)->outbox.empty()) {
    sink->Send((*w)->outbox.front());
    (*w)->outbox.pop_front();
  }
  return absl::OkStatus();
}

void WorkerRegistry::DetachStream(StreamSink<WorkerCommand>* sink) {
  for (auto it = streams_.begin(); it != streams_.end(); ++it) {
    if (it->second == sink) {
      streams_.erase(it);
      return;
    }
  }
}

void WorkerRegistry::CloseStream(const std::string& worker_id, const absl::Status& status) {
  if (auto it = streams_.find(worker_id); it != streams_.end()) {
    it->second->Close(status);
    streams_.erase(it);
  }
}

void WorkerRegistry::CloseAllStreams(const absl::Status& status) {
  for (auto& [id, sink] : streams_) sink->Close(status);
  streams_.clear();
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
