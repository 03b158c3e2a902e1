#include "coordinator/cli/job_client.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/chunked_transfer.h"
#include "common/file_io.h"
#include "common/grpc_status.h"
#include "coordinator/cli/job_text.h"

namespace ddlm {

absl::StatusOr<JobState> FollowJob(JobService::StubInterface& stub, const std::string& job_id,
                                   int64_t after_sequence, std::FILE* out) {
  JobState last = JOB_STATE_UNSPECIFIED;
  for (int tries = 0; tries < 5; ++tries) {
    grpc::ClientContext context;
    WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_after_sequence(after_sequence);
    auto reader = stub.WatchJob(&context, request);
    JobEvent event;
    while (reader->Read(&event)) {
      after_sequence = event.sequence();
      if (event.has_state()) last = event.state().state();
      std::fprintf(out, "%s\n", DescribeEvent(event).c_str());
      std::fflush(out);
    }
    grpc::Status status = reader->Finish();
    if (status.ok()) return last;
    // The coordinator went away (it may be restarting), or this client fell behind the
    // stream: follow on from the last event seen, after a pause that grows.
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
        status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) {
      return FromGrpcStatus(status);
    }
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) absl::SleepFor(absl::Seconds(1 << tries));
  }
  return absl::UnavailableError(absl::StrCat("lost the coordinator while watching ", job_id));
}

absl::Status SaveCheckpoint(JobService::StubInterface& stub, const std::string& job_id, const std::string& which,
                            const std::string& path) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  FetchCheckpointRequest request;
  request.set_job_id(job_id);
  request.set_checkpoint(which);
  absl::StatusOr<std::string> bytes =
      CollectChunks(stub.FetchCheckpoint(&context, request), absl::StrCat(job_id, "'s checkpoint"));
  if (!bytes.ok()) return bytes.status();
  return WriteFileAtomically(path, *bytes);
}

}  // namespace ddlm
