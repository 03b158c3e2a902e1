#include "coordinator/rpc/services.h"

#include <glog/logging.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/grpc_status.h"

namespace ddlm {
namespace {

// How often a blocked streaming handler wakes to see whether its client went away.
constexpr absl::Duration kPollInterval = absl::Milliseconds(500);

template <typename T, typename Out>
grpc::Status Reply(absl::StatusOr<T> result, Out* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status SendChunks(const std::string& bytes, grpc::ServerContext* context,
                        grpc::ServerWriter<DataChunk>* writer) {
  const uint32_t crc = Crc32(bytes);
  size_t offset = 0;
  do {
    DataChunk chunk;
    const size_t n = std::min(kChunkBytes, bytes.size() - offset);
    chunk.set_data(bytes.data() + offset, n);
    chunk.set_total_bytes(static_cast<int64_t>(bytes.size()));
    offset += n;
    if (offset == bytes.size()) {
      chunk.set_last(true);
      chunk.set_crc32(crc);
    }
    if (context->IsCancelled() || !writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
  } while (offset < bytes.size());
  return grpc::Status::OK;
}

}  // namespace

// ---------------------------------------------------------------- JobService

grpc::Status JobServiceImpl::SubmitJob(grpc::ServerContext*, const SubmitJobRequest* request, Job* job) {
  return Reply(c_->SubmitJob(request->spec()), job);
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext*, const GetJobRequest* request, Job* job) {
  return Reply(c_->GetJob(request->job_id()), job);
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext*, const ListJobsRequest*,
                                      ListJobsResponse* response) {
  for (Job& job : c_->ListJobs()) *response->add_jobs() = std::move(job);
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::WatchJob(grpc::ServerContext* context, const WatchJobRequest* request,
                                      grpc::ServerWriter<JobEvent>* writer) {
  int64_t after = request->after_sequence();
  while (!context->IsCancelled()) {
    bool finished = false;
    absl::StatusOr<std::vector<JobEvent>> events =
        c_->WaitForEvents(request->job_id(), after, absl::Now() + kPollInterval, &finished);
    if (!events.ok()) return ToGrpcStatus(events.status());
    for (const JobEvent& event : *events) {
      if (!writer->Write(event)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      after = event.sequence();
    }
    if (finished) return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext*, const CancelJobRequest* request, Job* job) {
  return Reply(c_->CancelJob(request->job_id()), job);
}

grpc::Status JobServiceImpl::ResumeJob(grpc::ServerContext*, const ResumeJobRequest* request, Job* job) {
  return Reply(c_->ResumeJob(*request), job);
}

grpc::Status JobServiceImpl::ListCheckpoints(grpc::ServerContext*, const ListCheckpointsRequest* request,
                                             ListCheckpointsResponse* response) {
  absl::StatusOr<std::vector<CheckpointInfo>> kept = c_->ListCheckpoints(request->job_id());
  if (!kept.ok()) return ToGrpcStatus(kept.status());
  for (CheckpointInfo& c : *kept) *response->add_checkpoints() = std::move(c);
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::Generate(grpc::ServerContext*, const GenerateRequest* request,
                                      GenerateResponse* response) {
  return Reply(c_->Generate(*request), response);
}

grpc::Status JobServiceImpl::ListWorkers(grpc::ServerContext*, const ListWorkersRequest*,
                                         ListWorkersResponse* response) {
  for (WorkerInfo& w : c_->ListWorkers()) *response->add_workers() = std::move(w);
  return grpc::Status::OK;
}

// ---------------------------------------------------------------- WorkerService

grpc::Status WorkerServiceImpl::Register(grpc::ServerContext*, const RegisterRequest* request,
                                         RegisterResponse* response) {
  return Reply(c_->Register(*request), response);
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext*, const HeartbeatRequest* request,
                                          HeartbeatResponse*) {
  return ToGrpcStatus(c_->Heartbeat(request->worker()));
}

grpc::Status WorkerServiceImpl::Deregister(grpc::ServerContext*, const DeregisterRequest* request,
                                           DeregisterResponse*) {
  return ToGrpcStatus(c_->Deregister(request->worker()));
}

grpc::Status WorkerServiceImpl::StreamCommands(grpc::ServerContext* context,
                                               const StreamCommandsRequest* request,
                                               grpc::ServerWriter<WorkerCommand>* writer) {
  while (!context->IsCancelled()) {
    absl::StatusOr<std::optional<WorkerCommand>> command =
        c_->NextCommand(request->worker(), absl::Now() + kPollInterval);
    if (!command.ok()) return ToGrpcStatus(command.status());
    if (command->has_value() && !writer->Write(**command)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "worker went away");
    }
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "worker went away");
}

grpc::Status WorkerServiceImpl::KeySet(grpc::ServerContext*, const KeySetRequest* request, KeySetResponse*) {
  if (absl::Status s = c_->CheckWorker(request->worker()); !s.ok()) return ToGrpcStatus(s);
  if (request->key().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "key is empty");
  return ToGrpcStatus(c_->key_value_store().Set(request->key(), request->value()));
}

grpc::Status WorkerServiceImpl::KeyGet(grpc::ServerContext*, const KeyGetRequest* request,
                                       KeyGetResponse* response) {
  if (absl::Status s = c_->CheckWorker(request->worker()); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<std::string> value = c_->key_value_store().Get(request->key());
  if (!value.ok()) return ToGrpcStatus(value.status());
  response->set_value(*std::move(value));
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::KeyWait(grpc::ServerContext*, const KeyWaitRequest* request,
                                        KeyWaitResponse*) {
  if (absl::Status s = c_->CheckWorker(request->worker()); !s.ok()) return ToGrpcStatus(s);
  if (request->keys().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "keys is empty");
  // Bounded so that a forgotten waiter cannot hold a server thread (and shutdown) forever.
  if (request->timeout_ms() < 0 || request->timeout_ms() > 3600000) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("timeout_ms must be in [0, 3600000], got ", request->timeout_ms()));
  }
  std::vector<std::string> keys(request->keys().begin(), request->keys().end());
  return ToGrpcStatus(
      c_->key_value_store().Wait(keys, absl::Milliseconds(request->timeout_ms())));
}

grpc::Status WorkerServiceImpl::DownloadShard(grpc::ServerContext* context,
                                              const DownloadShardRequest* request,
                                              grpc::ServerWriter<DataChunk>* writer) {
  absl::StatusOr<std::shared_ptr<const std::string>> shard = c_->Shard(*request);
  if (!shard.ok()) return ToGrpcStatus(shard.status());
  return SendChunks(**shard, context, writer);
}

grpc::Status WorkerServiceImpl::DownloadCheckpoint(grpc::ServerContext* context,
                                                   const DownloadCheckpointRequest* request,
                                                   grpc::ServerWriter<DataChunk>* writer) {
  if (absl::Status s = c_->CheckWorker(request->worker()); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<std::string> path = c_->CheckpointPath(request->job_id(), request->checkpoint_id());
  if (!path.ok()) return ToGrpcStatus(path.status());
  absl::StatusOr<std::string> bytes = ReadFile(*path);
  if (!bytes.ok()) return ToGrpcStatus(bytes.status());
  return SendChunks(*bytes, context, writer);
}

grpc::Status WorkerServiceImpl::ReportMetrics(grpc::ServerContext*, const ReportMetricsRequest* request,
                                              ReportMetricsResponse*) {
  return ToGrpcStatus(c_->ReportMetrics(*request));
}

grpc::Status WorkerServiceImpl::ReportEvaluation(grpc::ServerContext* context,
                                                 const ReportEvaluationRequest* request,
                                                 EvaluationDecision* decision) {
  // Wait as long as the worker's own deadline allows (it sets one).
  absl::Time deadline = context->deadline() == std::chrono::system_clock::time_point::max()
                            ? absl::InfiniteFuture()
                            : absl::FromChrono(context->deadline());
  return Reply(c_->ReportEvaluation(*request, deadline), decision);
}

grpc::Status WorkerServiceImpl::UploadCheckpoint(grpc::ServerContext*,
                                                 grpc::ServerReader<CheckpointChunk>* reader,
                                                 CheckpointInfo* info) {
  CheckpointChunk chunk;
  if (!reader->Read(&chunk)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no chunks were sent");
  }
  if (!chunk.has_attempt() || chunk.attempt().job_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the first chunk has no attempt");
  }
  const WorkerRef worker = chunk.worker();
  const AttemptRef attempt = chunk.attempt();
  std::string bytes = std::move(*chunk.mutable_data());
  while (reader->Read(&chunk)) bytes += chunk.data();
  return Reply(c_->UploadCheckpoint(worker, attempt, std::move(bytes)), info);
}

grpc::Status WorkerServiceImpl::FinishAssignment(grpc::ServerContext*,
                                                 const FinishAssignmentRequest* request,
                                                 FinishAssignmentResponse*) {
  return ToGrpcStatus(c_->FinishAssignment(*request));
}

}  // namespace ddlm
