#include "coordinator/rpc/services.h"

#include <glog/logging.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"
#include "common/transport/chunked_transfer.h"
#include "common/transport/grpc_status.h"

namespace ddlm {
namespace {

// A stream the Coordinator pushes into (coordinator/stream_sink.h), written out with
// the callback API. Send and Close only queue and start a write if none is in flight;
// OnWriteDone starts the next. A client that reads too slowly (kMaxQueued items
// waiting) has its stream ended with RESOURCE_EXHAUSTED, so a stuck client cannot
// grow the coordinator's memory; it can resume where it stopped (after_sequence).
// Deletes itself in OnDone, after detaching from the Coordinator.
template <typename T>
class SinkReactor final : public grpc::ServerWriteReactor<T>, public StreamSink<T> {
 public:
  static constexpr size_t kMaxQueued = 10000;

  explicit SinkReactor(std::function<void(StreamSink<T>*)> detach) : detach_(std::move(detach)) {}

  void Send(const T& item) override {
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      if (queue_.size() >= kMaxQueued) {
        closed_ = true;
        status_ = absl::ResourceExhaustedError(
            absl::StrCat("the client fell ", kMaxQueued, " items behind; reopen the stream to resume"));
      } else {
        queue_.push_back(item);
      }
    }
    Pump();
  }

  void Close(const absl::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      closed_ = true;
      status_ = status;
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok && !closed_) {  // The client went away.
        closed_ = true;
        status_ = absl::CancelledError("the client went away");
        queue_.clear();
      }
    }
    Pump();
  }

  void OnCancel() override {
    detach_(this);
    Close(absl::CancelledError("the client went away"));
  }

  void OnDone() override {
    detach_(this);
    delete this;
  }

 private:
  // Starts the next write, or finishes once closed and drained. Never holds mu_ while
  // calling into gRPC.
  void Pump() {
    const T* write = nullptr;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_) return;
      if (!queue_.empty()) {
        current_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
        write = &current_;
      } else if (closed_) {
        finished_ = true;
        finish = ToGrpcStatus(status_);
      }
    }
    if (write != nullptr) {
      this->StartWrite(write);
    } else if (finish) {
      this->Finish(*finish);
    }
  }

  const std::function<void(StreamSink<T>*)> detach_;
  absl::Mutex mu_;
  std::deque<T> queue_ ABSL_GUARDED_BY(mu_);
  T current_;  // Being written; only touched by the one Pump that set writing_.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

template <typename T, typename Out>
grpc::Status Reply(absl::StatusOr<T> result, Out* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

// The caller's "authorization" metadata, if it sent one.
std::optional<std::string> Authorization(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

// Cancels the transfer `context` runs once `max` has passed (nothing without deadlines).
std::optional<CallDeadlines::Registration> BoundTransfer(CallDeadlines* deadlines, absl::Duration max,
                                                         grpc::ServerContext* context) {
  if (deadlines == nullptr) return std::nullopt;
  return deadlines->Add(absl::Now() + max, [context] { context->TryCancel(); });
}

}  // namespace

JobServiceImpl::JobServiceImpl(Coordinator* coordinator, const AccessControl* access, CallDeadlines* deadlines,
                               absl::Duration max_transfer)
    : c_(coordinator),
      access_(access != nullptr ? access : &open_),
      deadlines_(deadlines),
      max_transfer_(max_transfer) {}

absl::StatusOr<Caller> JobServiceImpl::Admit(const grpc::ServerContextBase& context, const std::string* job_id) {
  absl::StatusOr<Caller> caller = access_->Authenticate(Authorization(context));
  if (!caller.ok()) return caller.status();
  if (absl::Status s = AccessControl::AllowJobService(*caller); !s.ok()) return s;
  if (job_id != nullptr && caller->role == Role::kUser) {
    absl::StatusOr<std::string> owner = c_->JobOwner(*job_id);
    if (!owner.ok()) return owner.status();
    if (absl::Status s = AccessControl::AllowJob(*caller, *job_id, *owner); !s.ok()) return s;
  }
  return caller;
}

WorkerServiceImpl::WorkerServiceImpl(Coordinator* coordinator, const AccessControl* access, CallDeadlines* deadlines,
                                     absl::Duration max_transfer)
    : c_(coordinator),
      access_(access != nullptr ? access : &open_),
      deadlines_(deadlines),
      max_transfer_(max_transfer) {}

absl::StatusOr<Caller> WorkerServiceImpl::Admit(const grpc::ServerContextBase& context, const std::string* worker_id) {
  absl::StatusOr<Caller> caller = access_->Authenticate(Authorization(context));
  if (!caller.ok()) return caller.status();
  if (absl::Status s = AccessControl::AllowWorkerService(*caller); !s.ok()) return s;
  if (worker_id != nullptr) {
    if (absl::Status s = c_->CheckWorkerCredential(*worker_id, caller->name); !s.ok()) return s;
  }
  return caller;
}

// ---------------------------------------------------------------- JobService

grpc::Status JobServiceImpl::SubmitJob(grpc::ServerContext* context, const SubmitJobRequest* request, Job* job) {
  DDLM_ASSIGN_OR_RETURN_AS(const Caller caller, Admit(*context, nullptr), ToGrpcStatus);
  return Reply(c_->SubmitJob(request->spec(), caller.name), job);
}

grpc::Status JobServiceImpl::GetJob(grpc::ServerContext* context, const GetJobRequest* request, Job* job) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->job_id()).status(), ToGrpcStatus);
  return Reply(c_->GetJob(request->job_id()), job);
}

grpc::Status JobServiceImpl::ListJobs(grpc::ServerContext* context, const ListJobsRequest*,
                                      ListJobsResponse* response) {
  DDLM_ASSIGN_OR_RETURN_AS(const Caller caller, Admit(*context, nullptr), ToGrpcStatus);
  for (Job& job : c_->ListJobs()) {
    if (AccessControl::AllowJob(caller, job.id(), job.owner()).ok()) {  // A user's own.
      *response->add_jobs() = std::move(job);
    }
  }
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<JobEvent>* JobServiceImpl::WatchJob(grpc::CallbackServerContext* context,
                                                             const WatchJobRequest* request) {
  Coordinator* c = c_;
  auto* reactor = new SinkReactor<JobEvent>([c](StreamSink<JobEvent>* s) { c->DetachEventStream(s); });
  if (absl::StatusOr<Caller> caller = Admit(*context, &request->job_id()); !caller.ok()) {
    reactor->Close(caller.status());
  } else if (absl::Status s = c_->AttachEventStream(request->job_id(), request->after_sequence(), reactor); !s.ok()) {
    reactor->Close(s);
  }
  return reactor;
}

grpc::Status JobServiceImpl::DeleteJob(grpc::ServerContext* context, const DeleteJobRequest* request,
                                       DeleteJobResponse*) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->job_id()).status(), ToGrpcStatus);
  return ToGrpcStatus(c_->DeleteJob(request->job_id()));
}

grpc::Status JobServiceImpl::CancelJob(grpc::ServerContext* context, const CancelJobRequest* request, Job* job) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->job_id()).status(), ToGrpcStatus);
  return Reply(c_->CancelJob(request->job_id()), job);
}

grpc::Status JobServiceImpl::ResumeJob(grpc::ServerContext* context, const ResumeJobRequest* request, Job* job) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->job_id()).status(), ToGrpcStatus);
  return Reply(c_->ResumeJob(*request), job);
}

grpc::Status JobServiceImpl::ListCheckpoints(grpc::ServerContext* context, const ListCheckpointsRequest* request,
                                             ListCheckpointsResponse* response) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->job_id()).status(), ToGrpcStatus);
  absl::StatusOr<std::vector<CheckpointInfo>> kept = c_->ListCheckpoints(request->job_id());
  if (!kept.ok()) return ToGrpcStatus(kept.status());
  for (CheckpointInfo& c : *kept) *response->add_checkpoints() = std::move(c);
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::FetchCheckpoint(grpc::ServerContext* context, const FetchCheckpointRequest* request,
                                             grpc::ServerWriter<DataChunk>* writer) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->job_id()).status(), ToGrpcStatus);
  absl::StatusOr<std::string> path = c_->KeptCheckpointPath(request->job_id(), request->checkpoint());
  if (!path.ok()) return ToGrpcStatus(path.status());
  const auto bound = BoundTransfer(deadlines_, max_transfer_, context);
  return SendFileChunks(*path, context, writer);
}

grpc::Status JobServiceImpl::Generate(grpc::ServerContext* context, const GenerateRequest* request,
                                      GenerateResponse* response) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->job_id()).status(), ToGrpcStatus);
  return Reply(c_->Generate(*request), response);
}

grpc::Status JobServiceImpl::GenerateStream(grpc::ServerContext* context, const GenerateRequest* request,
                                            grpc::ServerWriter<GenerateResponse>* writer) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->job_id()).status(), ToGrpcStatus);
  // A client that stops reading blocks Write once the flow-control window fills; the
  // deadline cancels the call then (Write returns false), so that it cannot hold one of
  // the few query slots for longer than a file transfer may take.
  const auto bound = BoundTransfer(deadlines_, max_transfer_, context);
  bool cancelled = false;
  absl::StatusOr<GenerateResponse> done = c_->Generate(*request, [&](const GenerateResponse& piece) {
    cancelled = context->IsCancelled() || !writer->Write(piece);
    return !cancelled;
  });
  if (!done.ok()) return ToGrpcStatus(done.status());
  if (cancelled) return grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
  return grpc::Status::OK;
}

grpc::Status JobServiceImpl::ScoreText(grpc::ServerContext* context, const ScoreTextRequest* request,
                                       ScoreTextResponse* response) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->job_id()).status(), ToGrpcStatus);
  return Reply(c_->ScoreText(*request), response);
}

grpc::Status JobServiceImpl::Attention(grpc::ServerContext* context, const AttentionRequest* request,
                                       AttentionResponse* response) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->job_id()).status(), ToGrpcStatus);
  return Reply(c_->Attention(*request), response);
}

grpc::Status JobServiceImpl::ListWorkers(grpc::ServerContext* context, const ListWorkersRequest*,
                                         ListWorkersResponse* response) {
  DDLM_ASSIGN_OR_RETURN_AS(const Caller caller, Admit(*context, nullptr), ToGrpcStatus);
  for (WorkerInfo& w : c_->ListWorkers()) {
    // A user sees every worker, but which job it runs only for their own jobs.
    if (caller.role == Role::kUser && !w.job_id().empty()) {
      absl::StatusOr<std::string> owner = c_->JobOwner(w.job_id());
      if (!owner.ok() || !AccessControl::AllowJob(caller, w.job_id(), *owner).ok()) {
        w.clear_job_id();
        w.set_rank(0);
      }
    }
    *response->add_workers() = std::move(w);
  }
  return grpc::Status::OK;
}

// ---------------------------------------------------------------- WorkerService

grpc::Status WorkerServiceImpl::Register(grpc::ServerContext* context, const RegisterRequest* request,
                                         RegisterResponse* response) {
  DDLM_ASSIGN_OR_RETURN_AS(const Caller caller, Admit(*context, nullptr), ToGrpcStatus);
  return Reply(c_->Register(*request, caller.name), response);
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* context, const HeartbeatRequest* request,
                                          HeartbeatResponse*) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->worker().worker_id()).status(), ToGrpcStatus);
  return ToGrpcStatus(c_->Heartbeat(request->worker()));
}

grpc::Status WorkerServiceImpl::Deregister(grpc::ServerContext* context, const DeregisterRequest* request,
                                           DeregisterResponse*) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->worker().worker_id()).status(), ToGrpcStatus);
  return ToGrpcStatus(c_->Deregister(request->worker()));
}

grpc::ServerWriteReactor<WorkerCommand>* WorkerServiceImpl::StreamCommands(grpc::CallbackServerContext* context,
                                                                           const StreamCommandsRequest* request) {
  Coordinator* c = c_;
  auto* reactor = new SinkReactor<WorkerCommand>([c](StreamSink<WorkerCommand>* s) { c->DetachCommandStream(s); });
  if (absl::StatusOr<Caller> caller = Admit(*context, &request->worker().worker_id()); !caller.ok()) {
    reactor->Close(caller.status());
  } else if (absl::Status s = c_->AttachCommandStream(request->worker(), reactor); !s.ok()) {
    reactor->Close(s);
  }
  return reactor;
}

grpc::Status WorkerServiceImpl::KeySet(grpc::ServerContext* context, const KeySetRequest* request, KeySetResponse*) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->worker().worker_id()).status(), ToGrpcStatus);
  return ToGrpcStatus(c_->KeySet(request->worker(), request->key(), request->value()));
}

grpc::Status WorkerServiceImpl::KeyGet(grpc::ServerContext* context, const KeyGetRequest* request,
                                       KeyGetResponse* response) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->worker().worker_id()).status(), ToGrpcStatus);
  absl::StatusOr<std::string> value = c_->KeyGet(request->worker(), request->key());
  if (!value.ok()) return ToGrpcStatus(value.status());
  response->set_value(*std::move(value));
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::KeyWait(grpc::ServerContext* context, const KeyWaitRequest* request, KeyWaitResponse*) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->worker().worker_id()).status(), ToGrpcStatus);
  std::vector<std::string> keys(request->keys().begin(), request->keys().end());
  return ToGrpcStatus(c_->KeyWait(request->worker(), keys, absl::Milliseconds(request->timeout_ms())));
}

grpc::Status WorkerServiceImpl::DownloadShard(grpc::ServerContext* context, const DownloadShardRequest* request,
                                              grpc::ServerWriter<DataChunk>* writer) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->worker().worker_id()).status(), ToGrpcStatus);
  absl::StatusOr<ShardSource> shard = c_->Shard(*request);
  if (!shard.ok()) return ToGrpcStatus(shard.status());
  const auto bound = BoundTransfer(deadlines_, max_transfer_, context);
  // Straight from the token file, a chunk at a time; the pages read are let go every
  // 8 MiB sent, so that serving a shard larger than memory keeps the coordinator small.
  const TokenFile& file = shard->file();
  int64_t sent_since_release = 0;
  return SendChunksFrom(
      shard->tokens() * 4,
      [&](int64_t offset, size_t n) -> absl::StatusOr<std::string> {
        const int64_t begin = shard->begin + offset / 4;
        std::string bytes = file.EncodeInt32(begin, begin + static_cast<int64_t>(n) / 4);
        if ((sent_since_release += static_cast<int64_t>(n)) >= (int64_t{8} << 20)) {
          file.ReleasePages();
          sent_since_release = 0;
        }
        return bytes;
      },
      context, writer);
}

grpc::Status WorkerServiceImpl::DownloadCheckpoint(grpc::ServerContext* context,
                                                   const DownloadCheckpointRequest* request,
                                                   grpc::ServerWriter<DataChunk>* writer) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->worker().worker_id()).status(), ToGrpcStatus);
  absl::StatusOr<std::string> path = c_->CheckpointFile(request->worker(), request->job_id(), request->checkpoint_id());
  if (!path.ok()) return ToGrpcStatus(path.status());
  const auto bound = BoundTransfer(deadlines_, max_transfer_, context);
  return SendFileChunks(*path, context, writer);
}

grpc::Status WorkerServiceImpl::ReportMetrics(grpc::ServerContext* context, const ReportMetricsRequest* request,
                                              ReportMetricsResponse*) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->worker().worker_id()).status(), ToGrpcStatus);
  return ToGrpcStatus(c_->ReportMetrics(*request));
}

grpc::Status WorkerServiceImpl::ReportEvaluation(grpc::ServerContext* context, const ReportEvaluationRequest* request,
                                                 EvaluationDecision* decision) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->worker().worker_id()).status(), ToGrpcStatus);
  // Wait as long as the worker's own deadline allows (the coordinator caps it).
  const absl::Duration timeout =
      context->deadline() == std::chrono::system_clock::time_point::max()
          ? absl::InfiniteDuration()
          : std::max(absl::ZeroDuration(), absl::FromChrono(context->deadline()) - absl::Now());
  return Reply(c_->ReportEvaluation(*request, timeout), decision);
}

grpc::Status WorkerServiceImpl::UploadCheckpoint(grpc::ServerContext* context,
                                                 grpc::ServerReader<CheckpointChunk>* reader, CheckpointInfo* info) {
  DDLM_ASSIGN_OR_RETURN_AS(const Caller caller, Admit(*context, nullptr), ToGrpcStatus);  // Before any byte is read.
  const auto bound = BoundTransfer(deadlines_, max_transfer_, context);
  CheckpointChunk chunk;
  if (!reader->Read(&chunk)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no chunks were sent");
  }
  if (!chunk.has_attempt() || chunk.attempt().job_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the first chunk has no attempt");
  }
  if (absl::Status s = c_->CheckWorkerCredential(chunk.worker().worker_id(), caller.name); !s.ok()) {
    return ToGrpcStatus(s);
  }
  // Checked before any byte is kept; then streamed to disk, bounded.
  absl::StatusOr<std::unique_ptr<CheckpointUpload>> upload = c_->BeginUpload(chunk.worker(), chunk.attempt());
  if (!upload.ok()) return ToGrpcStatus(upload.status());
  do {
    if (absl::Status s = (*upload)->Append(chunk.data()); !s.ok()) return ToGrpcStatus(s);
  } while (reader->Read(&chunk));
  return Reply((*upload)->Finish(), info);
}

grpc::Status WorkerServiceImpl::FinishAssignment(grpc::ServerContext* context, const FinishAssignmentRequest* request,
                                                 FinishAssignmentResponse*) {
  DDLM_RETURN_IF_ERROR_AS(Admit(*context, &request->worker().worker_id()).status(), ToGrpcStatus);
  return ToGrpcStatus(c_->FinishAssignment(*request));
}

}  // namespace ddlm
