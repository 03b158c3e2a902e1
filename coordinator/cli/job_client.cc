#include "coordinator/cli/job_client.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/file_io.h"
#include "common/transport/chunked_transfer.h"
#include "common/transport/grpc_status.h"
#include "coordinator/cli/job_text.h"
#include "coordinator/cli/progress_display.h"

namespace ddlm {

absl::StatusOr<JobState> FollowJob(JobService::StubInterface& stub, const std::string& job_id, int64_t after_sequence,
                                   std::FILE* out, bool live) {
  int total_epochs = 0;
  if (live) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    GetJobRequest request;
    request.set_job_id(job_id);
    Job job;
    if (stub.GetJob(&context, request, &job).ok()) total_epochs = job.spec().schedule().epochs();
  }
  ProgressDisplay display(out, live, total_epochs, live ? TerminalWidth(out) : 100);
  // However the watch ends, the status line does not stay behind.
  struct EndDisplay {
    ProgressDisplay& display;
    ~EndDisplay() { display.End(); }
  } end_display{display};
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
      display.Show(event);
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

absl::Status ReadJobEvents(JobService::StubInterface& stub, const std::string& job_id, Job* job,
                           std::vector<JobEvent>* events) {
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    GetJobRequest request;
    request.set_job_id(job_id);
    if (grpc::Status s = stub.GetJob(&context, request, job); !s.ok()) return FromGrpcStatus(s);
  }
  // WatchJob from the start: a finished job's stream ends by itself; a running job's
  // stream is cut once it has reached the job's latest event.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  WatchJobRequest request;
  request.set_job_id(job_id);
  auto reader = stub.WatchJob(&context, request);
  JobEvent event;
  while (event.sequence() < job->last_event_sequence() && reader->Read(&event)) events->push_back(event);
  if (static_cast<int64_t>(events->size()) >= job->last_event_sequence()) {
    context.TryCancel();
    (void)reader->Finish();
    return absl::OkStatus();
  }
  return FromGrpcStatus(reader->Finish());
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
