#ifndef DDLM_COORDINATOR_EVENT_FANOUT_H_
#define DDLM_COORDINATOR_EVENT_FANOUT_H_

// Jobs' events on their way to their watchers (WatchJob streams). An event is handed
// out only once the record write that holds it is on disk (its ticket, record_writer.h),
// so that no watcher ever sees an event that a crash could take back; once a job has
// ended, its watchers are closed (OK) after they have had every event. Nothing polls:
// the writes' completion pushes the events.
//
// Threading: not thread-safe. The Coordinator calls it under its mutex; sinks only
// queue (stream_sink.h), so no call blocks.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "coordinator/stream_sink.h"
#include "proto/job.pb.h"

namespace ddlm {

class EventFanout {
 public:
  // From now on `sink` gets job_id's delivered events with a sequence above
  // `after_sequence` (the caller sends the backlog already on disk first).
  void Attach(const std::string& job_id, int64_t after_sequence, StreamSink<JobEvent>* sink);
  // `sink` gets nothing more (no Close).
  void Detach(StreamSink<JobEvent>* sink);

  // `event` of job_id waits for record write `ticket`.
  void Enqueue(uint64_t ticket, const std::string& job_id, JobEvent event);
  // Once record write `ticket` is on disk, job_id's watchers are closed (OK) and detached.
  void EnqueueClose(uint64_t ticket, const std::string& job_id);
  // Hands out, in order, what waited for writes up to `durable`; calls
  // `delivered(job_id, sequence)` for each event handed out.
  void Deliver(uint64_t durable, const std::function<void(const std::string& job_id, int64_t sequence)>& delivered);

  // Whether anything of job_id still waits for its write.
  bool Pending(const std::string& job_id) const;
  // Closes every watcher with `status` and detaches it.
  void CloseAll(const absl::Status& status);
  int watchers() const { return static_cast<int>(watchers_.size()); }

 private:
  struct Watcher {
    StreamSink<JobEvent>* sink;
    int64_t after_sequence;
  };
  struct Delivery {
    uint64_t ticket = 0;
    std::string job_id;
    std::optional<JobEvent> event;  // None: close the job's watchers.
  };
  std::multimap<std::string, Watcher> watchers_;  // By job id.
  std::deque<Delivery> deliveries_;               // In ticket order.
  std::map<std::string, int> pending_;            // Deliveries waiting, by job id.
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_EVENT_FANOUT_H_
