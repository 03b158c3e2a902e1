#include "worker/rpc/grpc_coordinator_client.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/failpoint.h"
#include "common/transport/chunked_transfer.h"
#include "common/transport/grpc_status.h"

namespace ddlm {
namespace {

constexpr size_t kUploadChunkBytes = 1 << 20;
// How long a registration waits for the coordinator to be reachable before the worker
// says so and tries again.
constexpr absl::Duration kRegisterWait = absl::Seconds(5);

class GrpcCommandStream : public CommandStream {
 public:
  GrpcCommandStream(WorkerService::Stub* stub, const WorkerRef& worker) {
    StreamCommandsRequest request;
    *request.mutable_worker() = worker;
    reader_ = stub->StreamCommands(&context_, request);
  }
  bool Next(WorkerCommand* command) override { return reader_->Read(command); }
  absl::Status Finish() override { return FromGrpcStatus(reader_->Finish()); }
  void Cancel() override { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<WorkerCommand>> reader_;
};

class GrpcCoordinatorClient : public CoordinatorClient {
 public:
  GrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel, absl::Duration rpc_timeout,
                        absl::Duration transfer_timeout)
      : stub_(WorkerService::NewStub(channel)), rpc_timeout_(rpc_timeout), transfer_timeout_(transfer_timeout) {}

  // Waits for the channel to connect (up to kRegisterWait): a call that fails at once on
  // a channel in TRANSIENT_FAILURE leaves no thread polling it, and then a TLS handshake
  // with a coordinator that came back never finishes (the server's hello sat unread past
  // the connect deadline, again and again). Waiting, this thread drives the handshake.
  absl::StatusOr<RegisterResponse> Register(const RegisterRequest& request) override {
    absl::StatusOr<RegisterResponse> response = Unary(request, &WorkerService::Stub::Register, RegisterResponse(),
                                                      std::min(rpc_timeout_, kRegisterWait), /*wait_for_ready=*/true);
    if (response.status().code() != absl::StatusCode::kDeadlineExceeded) return response;
    // Waiting hides why the channel does not connect (a wrong CA, a certificate for
    // another host): one call that fails fast says it.
    return Unary(request, &WorkerService::Stub::Register, RegisterResponse(), std::min(rpc_timeout_, kRegisterWait));
  }
  absl::Status Heartbeat(const WorkerRef& worker) override {
    HeartbeatRequest request;
    *request.mutable_worker() = worker;
    return Unary(request, &WorkerService::Stub::Heartbeat, HeartbeatResponse(), rpc_timeout_).status();
  }
  absl::Status Deregister(const WorkerRef& worker) override {
    DeregisterRequest request;
    *request.mutable_worker() = worker;
    return Unary(request, &WorkerService::Stub::Deregister, DeregisterResponse(), rpc_timeout_).status();
  }
  std::unique_ptr<CommandStream> StreamCommands(const WorkerRef& worker) override {
    return std::make_unique<GrpcCommandStream>(stub_.get(), worker);
  }
  absl::Status KeySet(const WorkerRef& worker, const std::string& key, const std::string& value) override {
    KeySetRequest request;
    *request.mutable_worker() = worker;
    request.set_key(key);
    request.set_value(value);
    return Unary(request, &WorkerService::Stub::KeySet, KeySetResponse(), rpc_timeout_).status();
  }
  absl::StatusOr<std::string> KeyGet(const WorkerRef& worker, const std::string& key) override {
    KeyGetRequest request;
    *request.mutable_worker() = worker;
    request.set_key(key);
    absl::StatusOr<KeyGetResponse> response =
        Unary(request, &WorkerService::Stub::KeyGet, KeyGetResponse(), rpc_timeout_);
    if (!response.ok()) return response.status();
    return response->value();
  }
  absl::Status KeyWait(const WorkerRef& worker, const std::vector<std::string>& keys, absl::Duration timeout) override {
    KeyWaitRequest request;
    *request.mutable_worker() = worker;
    for (const std::string& k : keys) request.add_keys(k);
    request.set_timeout_ms(absl::ToInt64Milliseconds(timeout));
    return Unary(request, &WorkerService::Stub::KeyWait, KeyWaitResponse(), timeout + rpc_timeout_).status();
  }
  absl::Status DownloadShard(const DownloadShardRequest& request,
                             const std::function<absl::Status(absl::string_view)>& sink) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + transfer_timeout_));
    bool first = true;
    return ReceiveChunks(stub_->DownloadShard(&context, request), "shard", [&](absl::string_view chunk) {
      if (absl::Status s = sink(chunk); !s.ok()) return s;
      if (first) Failpoint(kFailpointShardDownload);  // A download in flight.
      first = false;
      return absl::OkStatus();
    });
  }
  absl::StatusOr<std::string> DownloadCheckpoint(const DownloadCheckpointRequest& request) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + transfer_timeout_));
    std::string bytes;
    bool first = true;
    absl::Status received =
        ReceiveChunks(stub_->DownloadCheckpoint(&context, request),
                      absl::StrCat("checkpoint ", request.checkpoint_id()), [&](absl::string_view chunk) {
                        bytes.append(chunk.data(), chunk.size());
                        if (first) Failpoint(kFailpointCheckpointDownload);  // A download in flight.
                        first = false;
                        return absl::OkStatus();
                      });
    if (!received.ok()) return received;
    return bytes;
  }
  absl::Status ReportMetrics(const ReportMetricsRequest& request) override {
    return Unary(request, &WorkerService::Stub::ReportMetrics, ReportMetricsResponse(), rpc_timeout_).status();
  }
  absl::StatusOr<EvaluationDecision> ReportEvaluation(const ReportEvaluationRequest& request,
                                                      absl::Duration timeout) override {
    return Unary(request, &WorkerService::Stub::ReportEvaluation, EvaluationDecision(), timeout);
  }
  absl::StatusOr<CheckpointInfo> UploadCheckpoint(const WorkerRef& worker, const AttemptRef& attempt,
                                                  const std::string& bytes) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + transfer_timeout_));
    CheckpointInfo info;
    std::unique_ptr<grpc::ClientWriter<CheckpointChunk>> writer = stub_->UploadCheckpoint(&context, &info);
    size_t offset = 0;
    bool first = true;
    while (first || offset < bytes.size()) {
      CheckpointChunk chunk;
      if (first) {
        *chunk.mutable_worker() = worker;
        *chunk.mutable_attempt() = attempt;
      }
      const size_t n = std::min(kUploadChunkBytes, bytes.size() - offset);
      chunk.set_data(bytes.data() + offset, n);
      offset += n;
      if (!writer->Write(chunk)) break;                  // The server ended the call; Finish says why.
      if (first) Failpoint(kFailpointCheckpointUpload);  // An upload in flight: a chunk sent, the call open.
      first = false;
    }
    writer->WritesDone();
    absl::Status status = FromGrpcStatus(writer->Finish());
    if (!status.ok()) return status;
    return info;
  }
  absl::Status FinishAssignment(const FinishAssignmentRequest& request) override {
    return Unary(request, &WorkerService::Stub::FinishAssignment, FinishAssignmentResponse(), rpc_timeout_).status();
  }

 private:
  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Unary(const Request& request, Method method, Response response, absl::Duration timeout,
                                 bool wait_for_ready = false) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    context.set_wait_for_ready(wait_for_ready);
    grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

  std::unique_ptr<WorkerService::Stub> stub_;
  const absl::Duration rpc_timeout_;
  const absl::Duration transfer_timeout_;
};

}  // namespace

std::unique_ptr<CoordinatorClient> NewGrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel,
                                                            absl::Duration rpc_timeout,
                                                            absl::Duration transfer_timeout) {
  return std::make_unique<GrpcCoordinatorClient>(std::move(channel), rpc_timeout, transfer_timeout);
}

std::shared_ptr<grpc::Channel> NewCoordinatorChannel(const std::string& address,
                                                     std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(address, std::move(credentials), args);
}

}  // namespace ddlm
