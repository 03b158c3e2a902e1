#ifndef DDLM_COORDINATOR_CLI_JOB_TEXT_H_
#define DDLM_COORDINATOR_CLI_JOB_TEXT_H_

// How the `ddlm` command line shows jobs and their events to a person: one line per
// event in word_language_model's style, and the job table of `ddlm list`.
//
// Threading: free functions on values.

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/job.pb.h"

namespace ddlm {

// One line for `event` (no newline): "| epoch   1 |   200/ 2983 batches | ...".
std::string DescribeEvent(const JobEvent& event);

// `ddlm list`: a header and one aligned row per job; every line ends with a newline.
std::string JobTable(const std::vector<Job>& jobs);

// `ddlm status JOB`: a few lines a person reads at a glance (state, model, progress,
// the latest figures, times as of `now`); every line ends with a newline.
std::string JobSummary(const Job& job, absl::Time now);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_CLI_JOB_TEXT_H_
