#include "worker/testing/fake_coordinator_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/checkpoint_format.h"
#include "common/base/status_macros.h"
#include "common/base/validation_rule.h"

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

absl::Status FakeCoordinatorClient::DownloadShard(const DownloadShardRequest& request,
                                                  const std::function<absl::Status(absl::string_view)>& sink) {
  std::string bytes;
  {
    absl::MutexLock lock(&mu_);
    auto it = shards_.find(request.split());
    if (it == shards_.end()) return absl::UnimplementedError("FakeCoordinatorClient: DownloadShard of a shard not set");
    bytes = it->second;
    ++shard_downloads_;
  }
  // In pieces of 4,000 bytes (1,000 ids), as a stream of chunks would come.
  for (size_t offset = 0; offset < bytes.size(); offset += 4000) {
    DDLM_RETURN_IF_ERROR(sink(absl::string_view(bytes).substr(offset, 4000)));
  }
  return absl::OkStatus();
}

int FakeCoordinatorClient::shard_downloads() {
  absl::MutexLock lock(&mu_);
  return shard_downloads_;
}

absl::StatusOr<std::string> FakeCoordinatorClient::DownloadCheckpoint(const DownloadCheckpointRequest& request) {
  absl::MutexLock lock(&mu_);
  auto it = checkpoints_.find(request.checkpoint_id());
  if (it == checkpoints_.end()) {
    return absl::NotFoundError(absl::StrCat("checkpoint '", request.checkpoint_id(), "' was never uploaded"));
  }
  return it->second;
}

absl::Status FakeCoordinatorClient::ReportMetrics(const ReportMetricsRequest& request) {
  absl::MutexLock lock(&mu_);
  metrics_.push_back(request.metrics());
  return absl::OkStatus();
}

absl::StatusOr<EvaluationDecision> FakeCoordinatorClient::ReportEvaluation(const ReportEvaluationRequest& request,
                                                                           absl::Duration) {
  absl::MutexLock lock(&mu_);
  EvaluationDecision decision;
  decision.set_loss(request.loss_sum() / static_cast<double>(request.tokens()));
  decision.set_tokens(request.tokens());
  if (request.split() == VALID) {
    const ValidationOutcome outcome = DecideAfterValidation(decision.loss(), best_loss_, lr_, anneal_);
    if (outcome.best) best_loss_ = decision.loss();
    lr_ = outcome.lr;
    decision.set_best(outcome.best);
    decision.set_lr(outcome.lr);
    valid_losses_.push_back(decision.loss());
  } else {
    test_losses_.push_back(decision.loss());
  }
  return decision;
}

absl::StatusOr<CheckpointInfo> FakeCoordinatorClient::UploadCheckpoint(const WorkerRef&, const AttemptRef&,
                                                                       const std::string& bytes) {
  absl::StatusOr<CheckpointView> view = ParseCheckpointView(bytes, "upload");
  if (!view.ok()) return view.status();
  CheckpointInfo info;
  info.set_id(absl::StrCat("e", view->header.position().epoch(), "-s", view->header.position().global_step()));
  absl::MutexLock lock(&mu_);
  checkpoints_[info.id()] = bytes;
  uploads_.push_back(info.id());
  return info;
}

void FakeCoordinatorClient::set_shard(Split split, std::string bytes) {
  absl::MutexLock lock(&mu_);
  shards_[split] = std::move(bytes);
}

void FakeCoordinatorClient::SetValidationState(std::optional<double> best_loss, double lr, double anneal) {
  absl::MutexLock lock(&mu_);
  best_loss_ = best_loss;
  lr_ = lr;
  anneal_ = anneal;
}

std::vector<TrainingMetrics> FakeCoordinatorClient::metrics() {
  absl::MutexLock lock(&mu_);
  return metrics_;
}

std::vector<double> FakeCoordinatorClient::valid_losses() {
  absl::MutexLock lock(&mu_);
  return valid_losses_;
}

std::vector<double> FakeCoordinatorClient::test_losses() {
  absl::MutexLock lock(&mu_);
  return test_losses_;
}

std::vector<std::string> FakeCoordinatorClient::uploads() {
  absl::MutexLock lock(&mu_);
  return uploads_;
}

std::string FakeCoordinatorClient::checkpoint(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = checkpoints_.find(id);
  return it == checkpoints_.end() ? std::string() : it->second;
}

absl::Status FakeCoordinatorClient::FinishAssignment(const FinishAssignmentRequest& request) {
  absl::MutexLock lock(&mu_);
  finishes_.push_back(request);
  ++finish_count_;
  return finish_status_;
}

}  // namespace ddlm
