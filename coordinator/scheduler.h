#ifndef DDLM_COORDINATOR_SCHEDULER_H_
#define DDLM_COORDINATOR_SCHEDULER_H_

// Placement: which queued jobs start on which free workers. Pure logic, free of the
// Coordinator's bookkeeping; the Coordinator reserves what the plan says.
//
// Rules: strict FIFO (a job never overtakes an older queued one, so a large job is not
// starved by small ones); a job's ranks are all of one device kind ("cpu" or "cuda":
// they all-reduce with one backend, NCCL between GPUs or Gloo between CPUs), taken in
// registration order.
//
// Threading: a free function on values.

#include <map>
#include <string>
#include <vector>

namespace ddlm {

struct QueuedJob {
  std::string id;
  int num_workers = 0;
  // Below num_workers: the job may start on as few as this many (a restart that lost
  // workers, spec.min_workers), taking as many as are free up to num_workers.
  int min_workers = 0;
};

struct FreeWorker {
  std::string id;
  std::string device;  // "cpu", "cuda:3".
};

struct Placement {
  std::string job_id;
  std::vector<std::string> workers;  // By rank.
};

struct SchedulePlan {
  std::vector<Placement> start;
  // Every queued job that does not start, and why it waits.
  std::map<std::string, std::string> waiting;
};

// `queue` oldest first; `free` in registration order; `live_workers` counts every live
// worker (for the messages).
SchedulePlan PlanSchedule(const std::vector<QueuedJob>& queue, const std::vector<FreeWorker>& free, int live_workers);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_SCHEDULER_H_
