#ifndef DDLM_WORKER_TESTING_FAKE_COORDINATOR_CLIENT_H_
#define DDLM_WORKER_TESTING_FAKE_COORDINATOR_CLIENT_H_

// A scripted CoordinatorClient for the worker's unit tests: it records what the worker
// asks, answers as the test says, and lets the test push commands down the worker's
// command stream. Await* block until the worker has done something N times (no sleeps).
// For a JobRunner it also plays one job's data plane: it serves the shards the test
// set, keeps uploaded checkpoints (named as the coordinator names them) for download,
// records metrics, and decides evaluations as a one-rank coordinator would
// (common/base/validation_rule.h). It links no LibTorch.
//
// Threading: thread-safe (the worker calls it from several threads while the test
// scripts and awaits it).

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/base/key_value_store.h"
#include "worker/coordinator_client.h"

namespace ddlm {

class FakeCoordinatorClient : public CoordinatorClient {
 public:
  // Register answers with the queued results in order, then with `register_response`.
  void QueueRegisterResult(absl::StatusOr<RegisterResponse> result) ABSL_LOCKS_EXCLUDED(mu_);
  void set_register_response(const RegisterResponse& response) ABSL_LOCKS_EXCLUDED(mu_);
  void set_heartbeat_status(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  void set_finish_status(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);

  // Sends `command` down the newest command stream, once one is open.
  void PushCommand(const WorkerCommand& command) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the newest command stream with `status` (as a coordinator that went away).
  void EndStream(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);

  // The data plane of one job: the bytes DownloadShard serves for `split`, and the
  // state its validation decisions start from (what a resume restores).
  void set_shard(Split split, std::string bytes) ABSL_LOCKS_EXCLUDED(mu_);
  void SetValidationState(std::optional<double> best_loss, double lr, double anneal = 4) ABSL_LOCKS_EXCLUDED(mu_);

  std::vector<RegisterRequest> registrations() ABSL_LOCKS_EXCLUDED(mu_);
  // How many DownloadShard calls were answered.
  int shard_downloads() ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<TrainingMetrics> metrics() ABSL_LOCKS_EXCLUDED(mu_);
  // The combined losses decided, by split.
  std::vector<double> valid_losses() ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<double> test_losses() ABSL_LOCKS_EXCLUDED(mu_);
  // Uploaded checkpoints' ids ("e<epoch>-s<step>"), in upload order, and their bytes.
  std::vector<std::string> uploads() ABSL_LOCKS_EXCLUDED(mu_);
  std::string checkpoint(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<FinishAssignmentRequest> finishes() ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<WorkerRef> deregistrations() ABSL_LOCKS_EXCLUDED(mu_);
  int heartbeats() ABSL_LOCKS_EXCLUDED(mu_);
  int streams_opened() ABSL_LOCKS_EXCLUDED(mu_);

  void AwaitRegistrations(int n) ABSL_LOCKS_EXCLUDED(mu_);
  void AwaitHeartbeats(int n) ABSL_LOCKS_EXCLUDED(mu_);
  void AwaitFinishes(int n) ABSL_LOCKS_EXCLUDED(mu_);
  void AwaitStreams(int n) ABSL_LOCKS_EXCLUDED(mu_);

  // CoordinatorClient. The rendezvous calls use an in-memory store; a shard not set
  // answers UNIMPLEMENTED, a checkpoint not uploaded NOT_FOUND, an upload that is not a
  // checkpoint DATA_LOSS.
  absl::StatusOr<RegisterResponse> Register(const RegisterRequest& request) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Heartbeat(const WorkerRef& worker) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Deregister(const WorkerRef& worker) override ABSL_LOCKS_EXCLUDED(mu_);
  std::unique_ptr<CommandStream> StreamCommands(const WorkerRef& worker) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status KeySet(const WorkerRef& worker, const std::string& key, const std::string& value) override;
  absl::StatusOr<std::string> KeyGet(const WorkerRef& worker, const std::string& key) override;
  absl::Status KeyWait(const WorkerRef& worker, const std::vector<std::string>& keys, absl::Duration timeout) override;
  absl::Status DownloadShard(const DownloadShardRequest& request,
                             const std::function<absl::Status(absl::string_view)>& sink) override;
  absl::StatusOr<std::string> DownloadCheckpoint(const DownloadCheckpointRequest& request) override;
  absl::Status ReportMetrics(const ReportMetricsRequest& request) override;
  absl::StatusOr<EvaluationDecision> ReportEvaluation(const ReportEvaluationRequest& request,
                                                      absl::Duration timeout) override;
  absl::StatusOr<CheckpointInfo> UploadCheckpoint(const WorkerRef& worker, const AttemptRef& attempt,
                                                  const std::string& bytes) override;
  absl::Status FinishAssignment(const FinishAssignmentRequest& request) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One command stream's state, shared with the CommandStream the worker holds.
  struct Stream {
    std::deque<WorkerCommand> commands;
    bool ended = false;
    absl::Status status;
  };
  class FakeStream;
  void AwaitCount(const int* count, int n) ABSL_LOCKS_EXCLUDED(mu_);

  absl::Mutex mu_;
  std::deque<absl::StatusOr<RegisterResponse>> register_results_ ABSL_GUARDED_BY(mu_);
  RegisterResponse register_response_ ABSL_GUARDED_BY(mu_);
  absl::Status heartbeat_status_ ABSL_GUARDED_BY(mu_);
  absl::Status finish_status_ ABSL_GUARDED_BY(mu_);
  std::vector<RegisterRequest> registrations_ ABSL_GUARDED_BY(mu_);
  std::vector<FinishAssignmentRequest> finishes_ ABSL_GUARDED_BY(mu_);
  std::vector<WorkerRef> deregistrations_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  int registration_count_ ABSL_GUARDED_BY(mu_) = 0;
  int heartbeat_count_ ABSL_GUARDED_BY(mu_) = 0;
  int finish_count_ ABSL_GUARDED_BY(mu_) = 0;
  int stream_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::string> shards_ ABSL_GUARDED_BY(mu_);
  int shard_downloads_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<TrainingMetrics> metrics_ ABSL_GUARDED_BY(mu_);
  std::vector<double> valid_losses_ ABSL_GUARDED_BY(mu_);
  std::vector<double> test_losses_ ABSL_GUARDED_BY(mu_);
  std::optional<double> best_loss_ ABSL_GUARDED_BY(mu_);
  double lr_ ABSL_GUARDED_BY(mu_) = 20;
  double anneal_ ABSL_GUARDED_BY(mu_) = 4;
  std::map<std::string, std::string> checkpoints_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> uploads_ ABSL_GUARDED_BY(mu_);
  InMemoryKeyValueStore store_;
};

}  // namespace ddlm

#endif  // DDLM_WORKER_TESTING_FAKE_COORDINATOR_CLIENT_H_
