#include "coordinator/event_fanout.h"

#include <utility>

namespace ddlm {

void EventFanout::Attach(const std::string& job_id, int64_t after_sequence, StreamSink<JobEvent>* sink) {
  watchers_.emplace(job_id, Watcher{sink, after_sequence});
}

void EventFanout::Detach(StreamSink<JobEvent>* sink) {
  for (auto it = watchers_.begin(); it != watchers_.end(); ++it) {
    if (it->second.sink == sink) {
      watchers_.erase(it);
      return;
    }
  }
}

void EventFanout::Enqueue(uint64_t ticket, const std::string& job_id, JobEvent event) {
  ++pending_[job_id];
  deliveries_.push_back({ticket, job_id, std::move(event)});
}

void EventFanout::EnqueueClose(uint64_t ticket, const std::string& job_id) {
  ++pending_[job_id];
  deliveries_.push_back({ticket, job_id, std::nullopt});
}

void EventFanout::Deliver(uint64_t durable,
                          const std::function<void(const std::string& job_id, int64_t sequence)>& delivered) {
  while (!deliveries_.empty() && deliveries_.front().ticket <= durable) {
    Delivery d = std::move(deliveries_.front());
    deliveries_.pop_front();
    if (auto p = pending_.find(d.job_id); p != pending_.end() && --p->second == 0) pending_.erase(p);
    auto [begin, end] = watchers_.equal_range(d.job_id);
    if (!d.event) {  // The job ended and its watchers have had every event.
      for (auto it = begin; it != end; ++it) it->second.sink->Close(absl::OkStatus());
      watchers_.erase(begin, end);
      continue;
    }
    for (auto it = begin; it != end; ++it) {
      if (d.event->sequence() > it->second.after_sequence) it->second.sink->Send(*d.event);
    }
    delivered(d.job_id, d.event->sequence());
  }
}

bool EventFanout::Pending(const std::string& job_id) const { return pending_.count(job_id) > 0; }

void EventFanout::CloseAll(const absl::Status& status) {
  for (auto& [job_id, watcher] : watchers_) watcher.sink->Close(status);
  watchers_.clear();
}

}  // namespace ddlm
