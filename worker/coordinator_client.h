#ifndef DDLM_WORKER_COORDINATOR_CLIENT_H_
#define DDLM_WORKER_COORDINATOR_CLIENT_H_

// Everything a worker asks of the coordinator, behind an interface so that the
// worker's logic (job_runner.h) runs against a fake in tests. The gRPC implementation
// is worker/rpc/grpc_coordinator_client.h. Error codes are the WorkerService's (see
// proto/worker_service.proto).
//
// Threading: implementations are thread-safe (the heartbeat thread, the command
// reader and the job runner call one client concurrently).

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/key_value_store.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

// A worker's open command stream.
class CommandStream {
 public:
  virtual ~CommandStream() = default;
  // Blocks for the next command; false when the stream ended (then call Finish).
  virtual bool Next(WorkerCommand* command) = 0;
  virtual absl::Status Finish() = 0;
  // Makes a blocked Next return false (from another thread).
  virtual void Cancel() = 0;
};

class CoordinatorClient {
 public:
  virtual ~CoordinatorClient() = default;
  virtual absl::StatusOr<RegisterResponse> Register(const RegisterRequest& request) = 0;
  virtual absl::Status Heartbeat(const WorkerRef& worker) = 0;
  virtual absl::Status Deregister(const WorkerRef& worker) = 0;
  virtual std::unique_ptr<CommandStream> StreamCommands(const WorkerRef& worker) = 0;
  virtual absl::Status KeySet(const WorkerRef& worker, const std::string& key, const std::string& value) = 0;
  virtual absl::StatusOr<std::string> KeyGet(const WorkerRef& worker, const std::string& key) = 0;
  virtual absl::Status KeyWait(const WorkerRef& worker, const std::vector<std::string>& keys,
                               absl::Duration timeout) = 0;
  // A shard's bytes (int32 little-endian token ids), passed to `sink` a chunk at a
  // time as they come (a shard may be larger than memory); its CRC-32 is checked at
  // the end: nothing the sink got may be trusted unless this returns OK.
  virtual absl::Status DownloadShard(const DownloadShardRequest& request,
                                     const std::function<absl::Status(absl::string_view)>& sink) = 0;
  // The whole object, reassembled from chunks and checked against its CRC-32.
  virtual absl::StatusOr<std::string> DownloadCheckpoint(const DownloadCheckpointRequest& request) = 0;
  virtual absl::Status ReportMetrics(const ReportMetricsRequest& request) = 0;
  virtual absl::StatusOr<EvaluationDecision> ReportEvaluation(const ReportEvaluationRequest& request,
                                                              absl::Duration timeout) = 0;
  virtual absl::StatusOr<CheckpointInfo> UploadCheckpoint(const WorkerRef& worker, const AttemptRef& attempt,
                                                          const std::string& bytes) = 0;
  virtual absl::Status FinishAssignment(const FinishAssignmentRequest& request) = 0;
};

// The coordinator's rendezvous store as a KeyValueStore, for the collectives.
//
// With `stop` (not owned), a Wait asks the coordinator in slices of at most `poll` and
// gives up (CANCELLED) within one slice of `stop` being set (plus the call's own RPC
// timeout if the coordinator stopped answering): a rank whose attempt was
// cancelled (another rank died before it joined the collective) leaves the rendezvous
// then, instead of waiting out the whole collective timeout for a key that will never
// be set.
class CoordinatorKeyValueStore : public KeyValueStore {
 public:
  CoordinatorKeyValueStore(CoordinatorClient* client /* not owned */, WorkerRef worker,
                           const std::atomic<bool>* stop = nullptr, absl::Duration poll = absl::Seconds(1))
      : client_(client), worker_(std::move(worker)), stop_(stop), poll_(poll) {}
  absl::Status Set(const std::string& key, const std::string& value) override {
    return client_->KeySet(worker_, key, value);
  }
  absl::StatusOr<std::string> Get(const std::string& key) override { return client_->KeyGet(worker_, key); }
  absl::Status Wait(const std::vector<std::string>& keys, absl::Duration timeout) override {
    if (stop_ == nullptr) return client_->KeyWait(worker_, keys, timeout);
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      if (stop_->load()) return absl::CancelledError("stopped while waiting for the other ranks' rendezvous keys");
      const absl::Duration left = std::max(absl::ZeroDuration(), deadline - absl::Now());
      absl::Status status = client_->KeyWait(worker_, keys, std::min(poll_, left));
      if (status.code() != absl::StatusCode::kDeadlineExceeded) return status;
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(status.message(), " (waited ", absl::FormatDuration(timeout), " in all)"));
      }
    }
  }

 private:
  CoordinatorClient* client_;
  WorkerRef worker_;
  const std::atomic<bool>* const stop_;
  const absl::Duration poll_;
};

}  // namespace ddlm

#endif  // DDLM_WORKER_COORDINATOR_CLIENT_H_
