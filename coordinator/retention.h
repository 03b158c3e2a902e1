#ifndef DDLM_COORDINATOR_RETENTION_H_
#define DDLM_COORDINATOR_RETENTION_H_

// Which checkpoints a job keeps: the latest `keep_last` and the best (the newest one
// flagged best), so a long job's disk use is bounded while "resume from latest" and
// "generate from best" always work.

#include <string>
#include <vector>

#include "proto/job.pb.h"

namespace ddlm {

// `kept` is oldest first. Returns the ids to delete; the rest stay in order.
std::vector<std::string> CheckpointsToDelete(const std::vector<CheckpointInfo>& kept, int keep_last);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_RETENTION_H_
