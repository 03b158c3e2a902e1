#ifndef DDLM_COORDINATOR_COORDINATOR_H_
#define DDLM_COORDINATOR_COORDINATOR_H_

// The coordinator's logic, free of gRPC: jobs, workers, scheduling, epochs,
// checkpoints. coordinator/rpc/ adapts it to JobService and WorkerService.
//
// Job state machine (per job; an "attempt" is one run of it on a set of workers):
//
//   SubmitJob ──> QUEUED ──(num_workers IDLE workers)──> RUNNING ──> SUCCEEDED
//                   │  ^                                   │  │
//                   │  └────────── ResumeJob ──────────┐   │  └─> FAILED (a rank
//                   v                                  │   v      failed or died)
//               CANCELLED <──(all ranks stopped)── CancelJob       │
//                   └────────────── ResumeJob (new attempt) <──────┘
//
// A RUNNING attempt: every rank downloads its shards, trains, and reports metrics each
// log interval (combined over ranks into one event). At each epoch end every rank
// reports its validation loss sum and token count; once all have, the coordinator
// combines them exactly, decides best/anneal (word_language_model's rule) and answers
// every rank with the same decision; rank 0 then uploads a checkpoint, which is
// verified, stored atomically, and pruned to the latest K plus the best. After the
// last epoch the ranks evaluate the best weights on the test split the same way and
// finish. A rank that fails, or a worker that stops heartbeating, fails the attempt:
// the other ranks are told to cancel, and the job becomes FAILED (resumable).
//
// Threading: thread-safe. One mutex guards everything; the blocking calls
// (NextCommand, WaitForEvents, ReportEvaluation) wait on conditions with deadlines
// and never hold the mutex while waiting. Checkpoint bytes are verified and written
// outside the mutex.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/corpus.h"
#include "common/key_value_store.h"
#include "coordinator/job_store.h"
#include "coordinator/worker_registry.h"
#include "proto/job.pb.h"
#include "proto/job_service.pb.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

struct CoordinatorOptions {
  std::string state_dir;
  // Told to workers at registration.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // A worker silent for longer is declared dead.
  absl::Duration heartbeat_timeout = absl::Seconds(10);
};

class Coordinator {
 public:
  // Loads the state directory. Jobs that were RUNNING when the previous coordinator
  // stopped become FAILED (resumable); QUEUED jobs stay queued.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(const CoordinatorOptions& options,
                                                             Clock* clock /* not owned */);

  // ---- JobService ----
  absl::StatusOr<Job> SubmitJob(const JobSpec& spec) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Job> GetJob(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<Job> ListJobs() ABSL_LOCKS_EXCLUDED(mu_);
  // Events with sequence > after_sequence, waiting until `deadline` for one to exist.
  // `*finished` is set when the job is in a final state and no later event remains.
  absl::StatusOr<std::vector<JobEvent>> WaitForEvents(const std::string& job_id,
                                                      int64_t after_sequence, absl::Time deadline,
                                                      bool* finished) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Job> CancelJob(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Job> ResumeJob(const ResumeJobRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints(const std::string& job_id)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<GenerateResponse> Generate(const GenerateRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<WorkerInfo> ListWorkers() ABSL_LOCKS_EXCLUDED(mu_);

  // ---- WorkerService ----
  absl::StatusOr<RegisterResponse> Register(const RegisterRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Heartbeat(const WorkerRef& worker) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Deregister(const WorkerRef& worker) ABSL_LOCKS_EXCLUDED(mu_);
  // The worker's next command, or nullopt if none came before `deadline`. ABORTED or
  // NOT_FOUND once `worker` is no longer a live incarnation.
  absl::StatusOr<std::optional<WorkerCommand>> NextCommand(const WorkerRef& worker,
                                                           absl::Time deadline)
      ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND / ABORTED as for Heartbeat.
  absl::Status CheckWorker(const WorkerRef& worker) ABSL_LOCKS_EXCLUDED(mu_);
  KeyValueStore& key_value_store() { return kv_; }
  // Token ids of one rank's shard, int32 little-endian.
  absl::StatusOr<std::shared_ptr<const std::string>> Shard(const DownloadShardRequest& request)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Path of a kept checkpoint file.
  absl::StatusOr<std::string> CheckpointPath(const std::string& job_id,
                                             const std::string& checkpoint_id)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status ReportMetrics(const ReportMetricsRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  // Records the rank's result (again is harmless) and waits until `deadline` for the
  // round's decision.
  absl::StatusOr<EvaluationDecision> ReportEvaluation(const ReportEvaluationRequest& request,
                                                      absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<CheckpointInfo> UploadCheckpoint(const WorkerRef& worker,
                                                  const AttemptRef& attempt, std::string bytes)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status FinishAssignment(const FinishAssignmentRequest& request) ABSL_LOCKS_EXCLUDED(mu_);

  // Declares workers whose heartbeats lapsed dead, failing their attempts. The server
  // calls it periodically; tests call it after moving a FakeClock.
  void CheckHeartbeats() ABSL_LOCKS_EXCLUDED(mu_);
  // Wakes every waiter; later waits return at once.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct JobData {
    Dictionary dictionary;
    std::vector<int64_t> train, valid, test;
  };
  struct MetricsRound {
    std::vector<bool> ranks;  // Which ranks reported.
    int reported = 0;
    TrainingMetrics sum;  // loss summed; tokens_per_second summed; ms max.
  };
  struct EvaluationRound {
    std::vector<bool> reported;
    double loss_sum = 0;
    int64_t tokens = 0;
    double seconds = 0;
    std::optional<EvaluationDecision> decision;
  };
  struct Attempt {
    int32_t number = 0;
    std::vector<std::string> workers;  // By rank.
    std::vector<bool> finished;
    // Per rank: train, valid, test shards.
    std::vector<std::array<std::shared_ptr<const std::string>, 3>> shards;
    std::map<std::pair<int32_t, int64_t>, MetricsRound> metrics;
    std::map<std::pair<int, int32_t>, EvaluationRound> evaluations;  // (split, epoch).
    bool cancel_requested = false;
    std::string failure;  // First failure; empty if none.
    bool tested = false;
    bool ended = false;
  };
  struct JobEntry {
    JobRecord record;
    std::shared_ptr<const JobData> data;
    std::optional<Attempt> attempt;
    std::string resume_checkpoint;  // For the next attempt.
    std::string resume_best;        // The best checkpoint of the resumed-from timeline.
    double lr = 0;
    std::optional<double> best_val_loss;
  };

  Coordinator(const CoordinatorOptions& options, Clock* clock);

  static absl::StatusOr<std::shared_ptr<const JobData>> LoadData(const JobSpec& spec);
  JobEntry* FindLocked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<JobEntry*> FindJobLocked(const std::string& job_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The entry and attempt for a worker's call about `ref`; ABORTED if not current.
  absl::StatusOr<JobEntry*> FindAttemptLocked(const WorkerRef& worker, const AttemptRef& ref)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddEventLocked(JobEntry& job, JobEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetStateLocked(JobEntry& job, JobState state, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SaveLocked(JobEntry& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `needed` free workers of one device kind (all "cpu" or all "cuda"), or none.
  static std::vector<WorkerEntry*> PickSameDeviceKind(const std::vector<WorkerEntry*>& idle, int needed);
  // "1 cpu, 2 cuda".
  static std::string DescribeKinds(const std::vector<WorkerEntry*>& idle);
  absl::Status StartAttemptLocked(JobEntry& job, const std::vector<WorkerEntry*>& workers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A rank stopped (finished, failed or died): frees its worker and ends the attempt
  // once every rank has stopped.
  void RankStoppedLocked(JobEntry& job, int rank, const std::string& failure)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelRanksLocked(JobEntry& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndAttemptLocked(JobEntry& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WorkerLostLocked(const WorkerEntry& worker, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CoordinatorOptions options_;
  Clock* const clock_;
  JobStore store_;
  InMemoryKeyValueStore kv_;

  absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_job_number_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::unique_ptr<JobEntry>> jobs_ ABSL_GUARDED_BY(mu_);  // Submission order.
  WorkerRegistry workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_COORDINATOR_H_
