#ifndef DDLM_COORDINATOR_RPC_SERVICES_H_
#define DDLM_COORDINATOR_RPC_SERVICES_H_

// gRPC adapters: each handler translates a request into a Coordinator call and the
// absl::Status back (common/transport/grpc_status.h). No logic lives here: who may call what is
// decided by AccessControl (from the call's metadata) and the Coordinator.
//
// Threading: the Coordinator is thread-safe. Unary calls and the chunked transfers
// run on gRPC's synchronous server threads. The two long-lived streams (WatchJob,
// StreamCommands) use the callback API: the Coordinator pushes into a reactor
// (stream_sink.h) when an event or command happens, so an open stream holds no
// thread and nothing polls.

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "coordinator/access_control.h"
#include "coordinator/coordinator.h"
#include "coordinator/rpc/call_deadlines.h"
#include "proto/job_service.grpc.pb.h"
#include "proto/worker_service.grpc.pb.h"

namespace ddlm {

class JobServiceImpl final : public JobService::WithCallbackMethod_WatchJob<JobService::Service> {
 public:
  // `access` (not owned; nullptr: open to everyone) decides who may call
  // (access_control.h).
  // `deadlines` (not owned; nullptr: none): file transfers are cancelled after
  // `max_transfer` (call_deadlines.h).
  explicit JobServiceImpl(Coordinator* coordinator /* not owned */, const AccessControl* access = nullptr,
                          CallDeadlines* deadlines = nullptr, absl::Duration max_transfer = absl::Minutes(10));

  grpc::Status SubmitJob(grpc::ServerContext*, const SubmitJobRequest*, Job*) override;
  grpc::Status GetJob(grpc::ServerContext*, const GetJobRequest*, Job*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const ListJobsRequest*, ListJobsResponse*) override;
  grpc::ServerWriteReactor<JobEvent>* WatchJob(grpc::CallbackServerContext*, const WatchJobRequest*) override;
  grpc::Status CancelJob(grpc::ServerContext*, const CancelJobRequest*, Job*) override;
  grpc::Status DeleteJob(grpc::ServerContext*, const DeleteJobRequest*, DeleteJobResponse*) override;
  grpc::Status ResumeJob(grpc::ServerContext*, const ResumeJobRequest*, Job*) override;
  grpc::Status ListCheckpoints(grpc::ServerContext*, const ListCheckpointsRequest*, ListCheckpointsResponse*) override;
  grpc::Status FetchCheckpoint(grpc::ServerContext*, const FetchCheckpointRequest*,
                               grpc::ServerWriter<DataChunk>*) override;
  grpc::Status Generate(grpc::ServerContext*, const GenerateRequest*, GenerateResponse*) override;
  // Writes each piece as it is made; a cancelled call stops generating at the next word.
  // Bounded as file transfers are (`max_transfer`).
  grpc::Status GenerateStream(grpc::ServerContext*, const GenerateRequest*,
                              grpc::ServerWriter<GenerateResponse>*) override;
  grpc::Status ScoreText(grpc::ServerContext*, const ScoreTextRequest*, ScoreTextResponse*) override;
  grpc::Status Attention(grpc::ServerContext*, const AttentionRequest*, AttentionResponse*) override;
  grpc::Status ListWorkers(grpc::ServerContext*, const ListWorkersRequest*, ListWorkersResponse*) override;

 private:
  // The authenticated caller, if allowed into JobService and (with `job_id`) onto the job.
  absl::StatusOr<Caller> Admit(const grpc::ServerContextBase& context, const std::string* job_id);

  Coordinator* c_;
  const AccessControl open_;
  const AccessControl* access_;
  CallDeadlines* deadlines_;
  absl::Duration max_transfer_;
};

class WorkerServiceImpl final : public WorkerService::WithCallbackMethod_StreamCommands<WorkerService::Service> {
 public:
  explicit WorkerServiceImpl(Coordinator* coordinator /* not owned */, const AccessControl* access = nullptr,
                             CallDeadlines* deadlines = nullptr, absl::Duration max_transfer = absl::Minutes(10));

  grpc::Status Register(grpc::ServerContext*, const RegisterRequest*, RegisterResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const HeartbeatRequest*, HeartbeatResponse*) override;
  grpc::Status Deregister(grpc::ServerContext*, const DeregisterRequest*, DeregisterResponse*) override;
  grpc::ServerWriteReactor<WorkerCommand>* StreamCommands(grpc::CallbackServerContext*,
                                                          const StreamCommandsRequest*) override;
  grpc::Status KeySet(grpc::ServerContext*, const KeySetRequest*, KeySetResponse*) override;
  grpc::Status KeyGet(grpc::ServerContext*, const KeyGetRequest*, KeyGetResponse*) override;
  grpc::Status KeyWait(grpc::ServerContext*, const KeyWaitRequest*, KeyWaitResponse*) override;
  grpc::Status DownloadShard(grpc::ServerContext*, const DownloadShardRequest*,
                             grpc::ServerWriter<DataChunk>*) override;
  grpc::Status DownloadCheckpoint(grpc::ServerContext*, const DownloadCheckpointRequest*,
                                  grpc::ServerWriter<DataChunk>*) override;
  grpc::Status ReportMetrics(grpc::ServerContext*, const ReportMetricsRequest*, ReportMetricsResponse*) override;
  grpc::Status ReportEvaluation(grpc::ServerContext*, const ReportEvaluationRequest*, EvaluationDecision*) override;
  grpc::Status UploadCheckpoint(grpc::ServerContext*, grpc::ServerReader<CheckpointChunk>*, CheckpointInfo*) override;
  grpc::Status FinishAssignment(grpc::ServerContext*, const FinishAssignmentRequest*,
                                FinishAssignmentResponse*) override;

 private:
  // The authenticated caller, if allowed into WorkerService and (with `worker_id`) to
  // act as that worker.
  absl::StatusOr<Caller> Admit(const grpc::ServerContextBase& context, const std::string* worker_id);

  Coordinator* c_;
  const AccessControl open_;
  const AccessControl* access_;
  CallDeadlines* deadlines_;
  absl::Duration max_transfer_;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_RPC_SERVICES_H_
