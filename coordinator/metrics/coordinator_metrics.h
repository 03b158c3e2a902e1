#ifndef DDLM_COORDINATOR_METRICS_COORDINATOR_METRICS_H_
#define DDLM_COORDINATOR_METRICS_COORDINATOR_METRICS_H_

// What the coordinator's /metrics page says (Prometheus text format):
//
//   ddlm_jobs{state}                       jobs by state (every state, 0 included)
//   ddlm_workers{state}                    registered workers by state
//   ddlm_job_tokens_per_second{job_id,name}   per RUNNING job, from its latest training
//   ddlm_job_training_loss{job_id,name}       metrics, summed (tokens/s) or averaged (loss)
//   ddlm_job_training_ppl{job_id,name}        over ranks
//   ddlm_job_learning_rate{job_id,name}
//   ddlm_job_epoch{job_id,name}
//   ddlm_job_global_step{job_id,name}
//   ddlm_job_best_val_ppl{job_id,name}        once the job has a validation result
//   ddlm_rpc_requests_total{method,code}   (rpc_stats.h)
//   ddlm_rpc_duration_seconds{method}      histogram
//
// The job's label is job_id, not job: Prometheus gives every target a "job" label of its
// own. Per-job series cover running jobs only, so that the number of series follows what
// runs, not every job the coordinator ever kept.

#include <string>
#include <vector>

#include "coordinator/metrics/rpc_stats.h"
#include "proto/job.pb.h"
#include "proto/job_service.pb.h"

namespace ddlm {

std::string RenderCoordinatorMetrics(const std::vector<Job>& jobs, const std::vector<WorkerInfo>& workers,
                                     const RpcStats* rpc_stats /* may be null */);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_METRICS_COORDINATOR_METRICS_H_
