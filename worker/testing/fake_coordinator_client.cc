#include "worker/testing/fake_coordinator_client.h"

#include <utility>

namespace ddlm {

// The worker's end of one scripted stream.
class FakeCoordinatorClient::FakeStream : public CommandStream {
 public:
  FakeStream(FakeCoordinatorClient* client, std::shared_ptr<Stream> stream)
      : client_(client), stream_(std::move(stream)) {}

  bool Next(WorkerCommand* command) override {
    absl::MutexLock lock(&client_->mu_);
    Stream* s = stream_.get();
    auto ready = [s]() { return s->ended || !s->commands.empty(); };
    client_->mu_.Await(absl::Condition(&ready));
    if (s->ended) return false;
    *command = std::move(s->commands.front());
    s->commands.pop_front();
    return true;
  }

  absl::Status Finish() override {
    absl::MutexLock lock(&client_->mu_);
    return stream_->status;
  }

  void Cancel() override {
    absl::MutexLock lock(&client_->mu_);
    if (!stream_->ended) {
      stream_->ended = true;
      stream_->status = absl::CancelledError("the worker cancelled the stream");
    }
  }

 private:
  FakeCoordinatorClient* const client_;
  const std::shared_ptr<Stream> stream_;
};

void FakeCoordinatorClient::QueueRegisterResult(absl::StatusOr<RegisterResponse> result) {
  absl::MutexLock lock(&mu_);
  register_results_.push_back(std::move(result));
}

void FakeCoordinatorClient::set_register_response(const RegisterResponse& response) {
  absl::MutexLock lock(&mu_);
  register_response_ = response;
}

void FakeCoordinatorClient::set_heartbeat_status(absl::Status status) {
  absl::MutexLock lock(&mu_);
  heartbeat_status_ = std::move(status);
}

void FakeCoordinatorClient::set_finish_status(absl::Status status) {
  absl::MutexLock lock(&mu_);
  finish_status_ = std::move(status);
}

void FakeCoordinatorClient::PushCommand(const WorkerCommand& command) {
  absl::MutexLock lock(&mu_);
  auto open = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !streams_.empty() && !streams_.back()->ended; };
  mu_.Await(absl::Condition(&open));
  streams_.back()->commands.push_back(command);
}

void FakeCoordinatorClient::EndStream(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (streams_.empty() || streams_.back()->ended) return;
  streams_.back()->ended = true;
  streams_.back()->status = std::move(status);
}

std::vector<RegisterRequest> FakeCoordinatorClient::registrations() {
  absl::MutexLock lock(&mu_);
  return registrations_;
}

std::vector<FinishAssignmentRequest> FakeCoordinatorClient::finishes() {
  absl::MutexLock lock(&mu_);
  return finishes_;
}

std::vector<WorkerRef> FakeCoordinatorClient::deregistrations() {
  absl::MutexLock lock(&mu_);
  return deregistrations_;
}

int FakeCoordinatorClient::heartbeats() {
  absl::MutexLock lock(&mu_);
  return heartbeat_count_;
}

int FakeCoordinatorClient::streams_opened() {
  absl::MutexLock lock(&mu_);
  return stream_count_;
}

void FakeCoordinatorClient::AwaitCount(const int* count, int n) {
  absl::MutexLock lock(&mu_);
  auto enough = [count, n]() { return *count >= n; };
  mu_.Await(absl::Condition(&enough));
}

void FakeCoordinatorClient::AwaitRegistrations(int n) { AwaitCount(&registration_count_, n); }
void FakeCoordinatorClient::AwaitHeartbeats(int n) { AwaitCount(&heartbeat_count_, n); }
void FakeCoordinatorClient::AwaitFinishes(int n) { AwaitCount(&finish_count_, n); }
void FakeCoordinatorClient::AwaitStreams(int n) { AwaitCount(&stream_count_, n); }

absl::StatusOr<RegisterResponse> FakeCoordinatorClient::Register(const RegisterRequest& request) {
  absl::MutexLock lock(&mu_);
  registrations_.push_back(request);
  ++registration_count_;
  if (!register_results_.empty()) {
    absl::StatusOr<RegisterResponse> result = std::move(register_results_.front());
    register_results_.pop_front();
    return result;
  }
  return register_response_;
}

absl::Status FakeCoordinatorClient::Heartbeat(const WorkerRef&) {
  absl::MutexLock lock(&mu_);
  ++heartbeat_count_;
  return heartbeat_status_;
}

absl::Status FakeCoordinatorClient::Deregister(const WorkerRef& worker) {
  absl::MutexLock lock(&mu_);
  deregistrations_.push_back(worker);
  return absl::OkStatus();
}

std::unique_ptr<CommandStream> FakeCoordinatorClient::StreamCommands(const WorkerRef&) {
  auto stream = std::make_shared<Stream>();
  absl::MutexLock lock(&mu_);
  streams_.push_back(stream);
  ++stream_count_;
  return std::make_unique<FakeStream>(this, stream);
}

absl::Status FakeCoordinatorClient::KeySet(const WorkerRef&, const std::string& key, const std::string& value) {
  return store_.Set(key, value);
}

absl::StatusOr<std::string> FakeCoordinatorClient::KeyGet(const WorkerRef&, const std::string& key) {
  return store_.Get(key);
}

absl::Status FakeCoordinatorClient::KeyWait(const WorkerRef&, const std::vector<std::string>& keys,
                                            absl::Duration timeout) {
  return store_.Wait(keys, timeout);
}

absl::StatusOr<std::string> FakeCoordinatorClient::DownloadShard(const DownloadShardRequest&) {
  return absl::UnimplementedError("FakeCoordinatorClient: DownloadShard");
}

absl::StatusOr<std::string> FakeCoordinatorClient::DownloadCheckpoint(const DownloadCheckpointRequest&) {
  return absl::UnimplementedError("FakeCoordinatorClient: DownloadCheckpoint");
}

absl::Status FakeCoordinatorClient::ReportMetrics(const ReportMetricsRequest&) {
  return absl::UnimplementedError("FakeCoordinatorClient: ReportMetrics");
}

absl::StatusOr<EvaluationDecision> FakeCoordinatorClient::ReportEvaluation(const ReportEvaluationRequest&,
                                                                           absl::Duration) {
  return absl::UnimplementedError("FakeCoordinatorClient: ReportEvaluation");
}

absl::StatusOr<CheckpointInfo> FakeCoordinatorClient::UploadCheckpoint(const WorkerRef&, const AttemptRef&,
                                                                       const std::string&) {
  return absl::UnimplementedError("FakeCoordinatorClient: UploadCheckpoint");
}

absl::Status FakeCoordinatorClient::FinishAssignment(const FinishAssignmentRequest& request) {
  absl::MutexLock lock(&mu_);
  finishes_.push_back(request);
  ++finish_count_;
  return finish_status_;
}

}  // namespace ddlm
