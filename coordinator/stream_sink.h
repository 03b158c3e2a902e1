#ifndef DDLM_COORDINATOR_STREAM_SINK_H_
#define DDLM_COORDINATOR_STREAM_SINK_H_

// Where the Coordinator pushes a long-lived stream's items as they happen (a worker's
// commands, a job's events), instead of a handler thread polling for them. The gRPC
// adapters implement it with callback-API reactors, so an open stream costs no
// thread and is woken by the event itself.
//
// Threading: the Coordinator calls Send and Close with its mutex held, so an
// implementation only queues (it never blocks and never calls back into the
// Coordinator). Close is the last call; after it, or after the sink is detached, the
// Coordinator no longer touches the sink.

#include "absl/status/status.h"

namespace ddlm {

template <typename T>
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void Send(const T& item) = 0;
  // The stream ends with `status` (OK: nothing more will come).
  virtual void Close(const absl::Status& status) = 0;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_STREAM_SINK_H_
