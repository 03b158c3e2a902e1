#ifndef DDLM_COORDINATOR_JOB_MANAGER_H_
#define DDLM_COORDINATOR_JOB_MANAGER_H_

// Jobs and their attempts, from submission to the end (the state machine drawn in
// coordinator.h): queueing, reserving workers, starting, the ranks' reports, restarts,
// resumes, cancels. It decides; it never waits, reads files or sends RPCs:
//   - workers are reserved, released and sent commands through the WorkerRegistry;
//   - every change is queued for the disk, and every event for watchers, through a
//     JobJournal (the Coordinator's JobRecordWriter and EventFanout);
//   - an attempt's rendezvous keys are dropped through the Rendezvous when it ends.
// Starting an attempt is split so that its slow part (reading the corpus, encoding the
// shards) runs elsewhere: Schedule reserves workers and queues the job;
// TakePendingStart hands out what the preparation needs; FinishStart assigns the ranks
// if the reservation still holds.
//
// Threading: not thread-safe. The Coordinator calls it under its own mutex, which also
// guards the registry; the journal is called back under that mutex.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "coordinator/attempt_preparation.h"
#include "coordinator/attempt_rounds.h"
#include "coordinator/rendezvous.h"
#include "coordinator/worker_registry.h"
#include "proto/job.pb.h"
#include "proto/job_service.pb.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

// Where the JobManager's changes go.
class JobJournal {
 public:
  virtual ~JobJournal() = default;
  // Queues the job's header and checkpoints, and `event` if not null, for its log; the
  // event reaches watchers once it is on disk.
  virtual void Append(const JobRecord& record, const JobEvent* event) = 0;
  // Queues a rewrite of the job's whole record (a new job, or one that ended).
  virtual void Snapshot(const JobRecord& record) = 0;
  // The job ended: its watchers are closed once they have had every event so far.
  virtual void Ended(const std::string& job_id) = 0;
};

bool IsFinalJobState(JobState state);

// One run of a job on a set of workers.
struct Attempt {
  int32_t number = 0;
  std::vector<std::string> workers;  // By rank.
  std::vector<bool> finished;
  std::vector<RankShards> shards;  // By rank.
  AttemptRounds rounds;            // Metrics and evaluation barriers.
  bool cancel_requested = false;
  std::string failure;     // First failure; empty if none.
  bool not_saved = false;  // The failure: the job's record could not be written.
  bool tested = false;
  bool ended = false;
  int64_t max_checkpoint_bytes = 0;  // What an upload may weigh.
  int64_t vocabulary_size = 0;
};

// Workers reserved for a queued job whose attempt is being prepared.
struct AttemptStart {
  // This reservation among all (a job that loses one and is reserved again gets the
  // same attempt number, but never the same reservation).
  uint64_t reservation = 0;
  bool taken = false;                // By TakePendingStart.
  int32_t number = 0;                // The attempt it will be.
  std::vector<std::string> workers;  // By rank; BUSY with this job and number.
};

struct JobEntry {
  JobRecord record;
  std::optional<AttemptStart> starting;
  std::optional<Attempt> attempt;
  std::string resume_checkpoint;  // For the next attempt.
  std::string resume_best;        // The best checkpoint of the resumed-from timeline.
  std::string reshard_note;       // For the next RUNNING event, if it runs on other workers.
  int64_t delivered_through = 0;  // Events 1..this are on disk and sent to watchers.
  double lr = 0;
  std::optional<double> best_val_loss;
};

// What preparing a reserved job's attempt needs (JobManager::TakePendingStart).
struct PendingStart {
  std::string job_id;
  uint64_t reservation = 0;  // AttemptStart::reservation.
  int32_t number = 0;        // The attempt.
  int world = 0;
  JobSpec spec;
};

class JobManager {
 public:
  // None owned; all outlive it.
  JobManager(Clock* clock, WorkerRegistry* workers, Rendezvous* rendezvous, JobJournal* journal);

  // A job read back from the state directory. One that was RUNNING lost its attempt
  // with the previous coordinator: it is restarted (or FAILED) like any failed attempt.
  void Load(JobRecord record);
  // Job ids from now on are above this one's number.
  void ReserveJobNumber(int64_t number);

  // A new job (spec defaulted and validated by the caller): QUEUED and scheduled at
  // once, or PREPARING if `preparing` (its corpus to be tokenized; then Prepared).
  JobEntry& Submit(const JobSpec& spec, const std::string& owner, bool preparing = false);
  // The end of a PREPARING job's preparation: QUEUED (and scheduled) if `result` is OK,
  // else FAILED with its message. A job no longer PREPARING (cancelled) stays as it is.
  void Prepared(const std::string& job_id, const absl::Status& result);
  // How far a PREPARING job's preparation is, as its message (not written to disk: a
  // coordinator that restarts prepares it again).
  void SetPreparingProgress(const std::string& job_id, const std::string& message);
  JobEntry* Find(const std::string& job_id);
  // INVALID_ARGUMENT for an empty id, NOT_FOUND for an unknown one.
  absl::StatusOr<JobEntry*> FindJob(const std::string& job_id);
  // The job of a worker's call about attempt `ref`: NOT_FOUND / ABORTED for an unknown
  // or stale worker, ABORTED if the attempt is not running or the worker is not that
  // rank, INVALID_ARGUMENT for a rank out of range.
  absl::StatusOr<JobEntry*> FindAttempt(const WorkerRef& worker, const AttemptRef& ref);
  const std::vector<std::unique_ptr<JobEntry>>& jobs() const { return jobs_; }

  // FAILED_PRECONDITION for a finished job.
  absl::StatusOr<Job> Cancel(const std::string& job_id);
  // Checks everything before changing anything (coordinator.h, ResumeJob).
  absl::StatusOr<Job> Resume(const ResumeJobRequest& request);
  // Forgets a finished job (FAILED_PRECONDITION otherwise).
  absl::Status Erase(const std::string& job_id);
  // The job's record could not be written: a running attempt fails (its ranks are told
  // to stop; no restart), a queued job FAILS.
  void FailNotSaved(const std::string& job_id, const std::string& why);

  // Reserves free workers for queued jobs (PlanSchedule) and updates the waiting ones'
  // messages.
  void Schedule();
  // Whether a reserved job waits for TakePendingStart.
  bool HasPendingStart() const { return !pending_starts_.empty(); }
  // The next reserved job to prepare, if any; nullopt when none is left.
  std::optional<PendingStart> TakePendingStart();
  // Ends the start TakePendingStart handed out: assigns the ranks and sends their
  // Assignments (RUNNING), FAILED if preparing failed, or back to the queue if the
  // reservation was lost meanwhile. Nothing if the job moved on (cancelled, restarted,
  // or reserved again: a start is finished only for the reservation it was taken for).
  void FinishStart(const PendingStart& start, absl::StatusOr<PreparedAttempt> prepared);

  // A BUSY worker died, left or was replaced: its attempt fails (or its reservation is
  // given up).
  void WorkerLost(const WorkerEntry& worker, const std::string& why);
  absl::Status FinishAssignment(const FinishAssignmentRequest& request);
  // Combines the ranks' metrics; one event once every rank reported.
  absl::Status ReportMetrics(const ReportMetricsRequest& request);
  // Records one rank's evaluation of attempt `job` (from FindAttempt; the request is
  // checked by the caller); the report that completes the round decides it
  // (best, learning rate: common/base/validation_rule.h) and makes its event. ABORTED for an
  // undecided round of a cancelled or failed attempt.
  absl::Status RecordEvaluation(JobEntry& job, const ReportEvaluationRequest& request);
  // Records kept checkpoint `info` of attempt `job`; returns the ids retention dropped.
  std::vector<std::string> KeepCheckpoint(JobEntry& job, const CheckpointInfo& info);

 private:
  void AddEvent(JobEntry& job, JobEvent event);
  void Save(JobEntry& job, const JobEvent* event = nullptr);
  void Snapshot(JobEntry& job);
  // `restart`: the number of the automatic restart this change is (QUEUED), else 0.
  void SetState(JobEntry& job, JobState state, const std::string& message, int32_t restart = 0);
  // The next attempt continues from `from` (nullptr: from the start), with the
  // learning rate, best loss and best weights of that point of the job's timeline.
  void ResumeFrom(JobEntry& job, const CheckpointInfo* from);
  // An attempt failed for `why`: requeue the job from its latest kept checkpoint
  // (QUEUED, an event with the restart's number and reason) while spec.max_restarts
  // allows; else FAILED with `why`.
  void RestartOrFail(JobEntry& job, const std::string& why);
  static const CheckpointInfo* FindCheckpoint(const JobEntry& job, const std::string& id);
  static const CheckpointInfo* LatestEpochEnd(const JobEntry& job);
  // If the checkpoint the next attempt resumes from was written by another number of
  // workers than spec.num_workers, resume from the latest epoch-end checkpoint instead
  // (or the start), and note it for the RUNNING event.
  void ReshardIfNeeded(JobEntry& job);
  void Reserve(JobEntry& job, const std::vector<WorkerEntry*>& workers);
  void ReleaseReservation(JobEntry& job);
  // A rank stopped (finished, failed or died): frees its worker and ends the attempt
  // once every rank has stopped.
  void RankStopped(JobEntry& job, int rank, const std::string& failure);
  void CancelRanks(JobEntry& job);
  void EndAttempt(JobEntry& job);

  Clock* const clock_;
  WorkerRegistry* const workers_;
  Rendezvous* const rendezvous_;
  JobJournal* const journal_;
  int64_t next_job_number_ = 1;
  uint64_t next_reservation_ = 1;
  std::vector<std::unique_ptr<JobEntry>> jobs_;  // Submission order.
  std::deque<std::string> pending_starts_;       // Job ids, reserved.
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_JOB_MANAGER_H_
