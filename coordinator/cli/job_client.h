#ifndef DDLM_COORDINATOR_CLI_JOB_CLIENT_H_
#define DDLM_COORDINATOR_CLI_JOB_CLIENT_H_

// The `ddlm` commands' calls to a coordinator's JobService that take more than one
// RPC: following a job to its end, and saving a kept checkpoint to a file. `ddlm
// launch` uses the same two, as any other client would.
//
// Threading: one call at a time per stub is enough; nothing is shared.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/job.pb.h"
#include "proto/job_service.grpc.pb.h"

namespace ddlm {

// Prints the job's events after `after_sequence` to `out` until the job ends: one line
// each (DescribeEvent), or with `live`, a status line redrawn in place below the other
// events (progress_display.h; for a terminal); on UNAVAILABLE (1, 2, 4, 8 s apart) or
// RESOURCE_EXHAUSTED (it fell behind) it follows on from the last event seen, up to 4
// times. Returns the job's final state.
absl::StatusOr<JobState> FollowJob(JobService::StubInterface& stub, const std::string& job_id, int64_t after_sequence,
                                   std::FILE* out, bool live = false);

// Every event of the job so far (and, if it is still running, none after), with the job.
absl::Status ReadJobEvents(JobService::StubInterface& stub, const std::string& job_id, Job* job,
                           std::vector<JobEvent>* events);

// Writes the job's kept checkpoint `which` ("best" or "", "latest", an id) to `path`
// atomically, checked against its CRC-32 (FetchCheckpoint).
absl::Status SaveCheckpoint(JobService::StubInterface& stub, const std::string& job_id, const std::string& which,
                            const std::string& path);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_CLI_JOB_CLIENT_H_
