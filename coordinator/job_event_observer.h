#ifndef DDLM_COORDINATOR_JOB_EVENT_OBSERVER_H_
#define DDLM_COORDINATOR_JOB_EVENT_OBSERVER_H_

// Something outside the control plane that follows every job's events, such as the
// TensorBoard exporter (coordinator/tensorboard/): unlike a WatchJob stream it is not
// attached to one job, and it lives as long as the coordinator.
//
// Threading: the Coordinator calls OnJobEvent with its mutex held, in each job's event
// order, once the event is on disk (as WatchJob streams get it). An implementation only
// queues: it never blocks and never calls back into the Coordinator.

#include <string>

#include "proto/job.pb.h"

namespace ddlm {

class JobEventObserver {
 public:
  virtual ~JobEventObserver() = default;
  virtual void OnJobEvent(const Job& job, const JobEvent& event) = 0;
  // The job was deleted (after its last event): what the observer kept of it can go.
  // Called without the Coordinator's mutex.
  virtual void OnJobDeleted(const std::string& job_id) { (void)job_id; }
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_JOB_EVENT_OBSERVER_H_
