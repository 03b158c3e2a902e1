#ifndef DDLM_COORDINATOR_COORDINATOR_H_
#define DDLM_COORDINATOR_COORDINATOR_H_

// The coordinator, free of gRPC: a facade that wires the managers, each with its own
// tests, and makes their changes durable. coordinator/rpc/ adapts it to JobService
// and WorkerService.
//   - JobManager (job_manager.h): jobs and attempts, the state machine below;
//   - WorkerRegistry (worker_registry.h): membership, reservations, command streams;
//   - Rendezvous (rendezvous.h): the attempts' key-value store (its own lock);
//   - JobStore + JobRecordWriter (job_store.h, record_writer.h): the records on disk;
//   - EventFanout (event_fanout.h): WatchJob streams, fed once events are on disk;
//   - attempt_preparation.h: corpora tokenized to disk once (TokenCache, in
//     <state_dir>/corpora) and cut into shards (ranges of the token files, streamed
//     by DownloadShard), on the preparer's own thread (common/base/executor.h);
//   - CheckpointUpload (checkpoint_upload.h): uploads verified off the lock.
//
// Job state machine (per job; an "attempt" is one run of it on a set of workers):
//
//   SubmitJob ──> PREPARING ──> FAILED (the corpus cannot be read, or is too small)
//                   │ (its corpus tokenized: the token cache)
//                   v
//                  QUEUED ──(num_workers IDLE workers)──> RUNNING ──> SUCCEEDED
//                   │  ^  ^                                │  │
//                   │  │  └── restart (automatic, from ────┤  └─> FAILED (a rank failed or
//                   │  │      the latest checkpoint)       │      died, and spec.max_restarts
//                   │  └────────── ResumeJob ──────────┐   │      restarts are spent)
//                   v                                  │   v             │
//               CANCELLED <──(all ranks stopped)── CancelJob             │
//                   └────────────── ResumeJob (new attempt) <────────────┘
//
// Starting: once num_workers free workers of one device kind exist, the scheduler
// reserves them (BUSY; the job stays QUEUED, "starting ..."), and the call that made
// the reservation answers. The preparer's thread then gets the corpus's tokens (from
// the TokenCache, where the submission put them, unless its files changed since) and
// cuts the shards without the lock; then the ranks are assigned, the job is RUNNING once that
// is on disk, and its watchers hear it. A reserved worker lost meanwhile puts the job
// back in the queue.
//
// A RUNNING attempt: every rank downloads its shards, trains, and reports metrics each
// log interval (combined over ranks into one event). At each epoch end every rank
// reports its validation loss sum and token count; once all have, the coordinator
// combines them exactly, decides best/anneal (word_language_model's rule) and answers
// every rank with the same decision; rank 0 then uploads a checkpoint, which is
// verified, stored atomically, and pruned to the latest K plus the best. After the
// last epoch the ranks evaluate the best weights on the test split the same way and
// finish. A rank that fails, or a worker that stops heartbeating, fails the attempt:
// the other ranks are told to cancel and, once every rank has stopped, the job is
// restarted: QUEUED again (an event names the restart and its reason), it continues
// from its latest kept checkpoint on the next free workers, exactly as if it had never
// stopped. After spec.max_restarts restarts it is FAILED instead (resumable by hand).
// A coordinator that restarts finds its RUNNING jobs' attempts gone, and restarts them
// the same way.
//
// Threading: thread-safe. Besides the callers' threads, one thread of its own prepares
// attempts (preparer_). One mutex (mu_) guards the JobManager, the WorkerRegistry
// and the event streams, which are not thread-safe themselves; the one blocking call
// (ReportEvaluation) waits on a condition with a deadline and never holds the mutex
// while waiting; streams are pushed to (stream_sink.h), never polled. Heartbeats never
// take it (the registry's HeartbeatTable answers them), nor do the Rendezvous's waits.
// No record write happens under it: a change queues its job-record write
// (JobRecordWriter), and the call that made it waits for the write after releasing the
// mutex, answering OK only once the change is on disk (a failed write fails the call);
// event streams get each event only then. Checkpoint bytes are verified and written
// outside the mutex too, and renamed into place (with the directory's fsync) under the
// job's own keep lock, between two checks under the mutex that the attempt is current
// (a late upload is undone, never kept).

#include <algorithm>
#include <atomic>
#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/base/corpus.h"
#include "common/base/data_roots.h"
#include "common/base/executor.h"
#include "coordinator/attempt_preparation.h"
#include "coordinator/attempt_rounds.h"
#include "coordinator/checkpoint_upload.h"
#include "coordinator/event_fanout.h"
#include "coordinator/job_event_observer.h"
#include "coordinator/job_manager.h"
#include "coordinator/job_store.h"
#include "coordinator/record_writer.h"
#include "coordinator/rendezvous.h"
#include "coordinator/stream_sink.h"
#include "coordinator/model_query_runner.h"
#include "common/base/token_cache.h"
#include "coordinator/worker_credentials.h"
#include "coordinator/worker_registry.h"
#include "proto/job.pb.h"
#include "proto/job_service.pb.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

struct CoordinatorOptions {
  std::string state_dir;
  // The only directories corpora are read from (common/base/data_roots.h); empty means the
  // working directory.
  std::vector<std::string> data_roots;
  // Told to workers at registration.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // A worker silent for longer is declared dead...
  absl::Duration heartbeat_timeout = absl::Seconds(10);
  // ...and forgotten (gone from ListWorkers) this long after that.
  absl::Duration dead_worker_grace = absl::Minutes(10);
  // The longest a ReportEvaluation call waits for the other ranks, whatever deadline
  // its caller set (workers ask again: reporting twice is harmless), so that no call
  // holds a server thread for long.
  absl::Duration max_evaluation_wait = absl::Seconds(60);
  // WatchJob streams open at once, over all jobs; more are RESOURCE_EXHAUSTED (each
  // holds a reactor and its queue; command streams are one per live worker).
  int max_event_streams = 10000;
  // The model queries' limits (words, text sizes, concurrent queries).
  ModelQueryOptions model_queries;
  // Not owned; may be null. Gets every job's events once they are on disk, such as the
  // TensorBoard exporter (coordinator/tensorboard/).
  JobEventObserver* event_observer = nullptr;
  // Attempts are prepared (corpus read, shards encoded) on a thread of the coordinator's
  // own, so that no call waits for another job's start. False: inside the call that
  // reserved the workers, before it answers, if no other call is preparing one (tests
  // that step through a start from one thread).
  bool prepare_on_own_thread = true;
  // Tests only: called (without the coordinator's lock) just before an attempt's
  // corpus is read and its shards encoded.
  std::function<void(const std::string& job_id)> before_prepare_for_testing;
  // Tests only: called (without the coordinator's lock) just before a PREPARING job's
  // corpus is tokenized.
  std::function<void(const std::string& job_id)> before_tokenize_for_testing;
  // Tests only: called (without the coordinator's lock) once an upload's file has been
  // renamed into place, before the coordinator checks again that its attempt is current.
  std::function<void()> after_checkpoint_rename_for_testing;
  // Tests only: called (without the coordinator's lock) before each batch of job-record
  // writes reaches the disk; a slow disk, as the coordinator sees it.
  std::function<void()> before_record_write_for_testing;
};

class Coordinator {
 public:
  // Loads the state directory. Jobs that were RUNNING when the previous coordinator
  // stopped are restarted from their latest checkpoint (or FAILED, resumable, once
  // their max_restarts are spent); QUEUED jobs stay queued. A damaged job record is
  // set aside (JobStore::LoadAll) and reported in the log.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(const CoordinatorOptions& options,
                                                             Clock* clock /* not owned */);

  // ---- JobService ----
  // `owner`: the submitting token's name (access_control.h), recorded as Job.owner.
  absl::StatusOr<Job> SubmitJob(const JobSpec& spec, const std::string& owner = "") ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Job> GetJob(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Job.owner alone (for access checks: no copy of the job).
  absl::StatusOr<std::string> JobOwner(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<Job> ListJobs() ABSL_LOCKS_EXCLUDED(mu_);
  // Pushes the job's events after `after_sequence` to `sink`, then each new one once it
  // is on disk (a watcher never sees an event that a crash could take back), and closes
  // it (OK) once the job is in a final state and has no later event. An error (bad id,
  // shutting down, RESOURCE_EXHAUSTED past options.max_event_streams) is returned
  // without touching the sink.
  // The sink stays attached until closed or DetachEventStream.
  absl::Status AttachEventStream(const std::string& job_id, int64_t after_sequence, StreamSink<JobEvent>* sink)
      ABSL_LOCKS_EXCLUDED(mu_);
  void DetachEventStream(StreamSink<JobEvent>* sink) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Job> CancelJob(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Job> ResumeJob(const ResumeJobRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets a finished job and removes its files. FAILED_PRECONDITION unless finished.
  absl::Status DeleteJob(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Where a kept checkpoint's file is ("best" or "", "latest", or an id), for users to
  // stream it from disk (FetchCheckpoint). NOT_FOUND / FAILED_PRECONDITION as
  // ListCheckpoints and Generate.
  absl::StatusOr<std::string> KeptCheckpointPath(const std::string& job_id, const std::string& which)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The model queries (model_query_runner.h), on the checkpoint the request names,
  // without the lock. GenerateStream's `sink` gets each piece as it is made.
  absl::StatusOr<GenerateResponse> Generate(const GenerateRequest& request, const GenerateSink& sink = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A `file` is read from inside the data roots, at most limits.max_file_bytes.
  absl::StatusOr<ScoreTextResponse> ScoreText(const ScoreTextRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<AttentionResponse> Attention(const AttentionRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<WorkerInfo> ListWorkers() ABSL_LOCKS_EXCLUDED(mu_);

  // ---- WorkerService ----
  // `credential`: the name of the worker token it called with ("" without tokens). The
  // id is bound to it (worker_credentials.h): PERMISSION_DENIED under another one.
  absl::StatusOr<RegisterResponse> Register(const RegisterRequest& request, const std::string& credential = "")
      ABSL_LOCKS_EXCLUDED(mu_);
  // PERMISSION_DENIED if `worker_id` is bound to another credential. Without the lock.
  absl::Status CheckWorkerCredential(const std::string& worker_id, const std::string& credential) const;
  absl::Status Heartbeat(const WorkerRef& worker) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Deregister(const WorkerRef& worker) ABSL_LOCKS_EXCLUDED(mu_);
  // Pushes the worker's commands to `sink` as they come (those already queued first).
  // The sink is closed with ABORTED when the incarnation is replaced, declared dead or
  // leaves, or when another stream for the worker attaches; UNAVAILABLE on shutdown.
  // NOT_FOUND / ABORTED (sink untouched) as for Heartbeat.
  absl::Status AttachCommandStream(const WorkerRef& worker, StreamSink<WorkerCommand>* sink) ABSL_LOCKS_EXCLUDED(mu_);
  void DetachCommandStream(StreamSink<WorkerCommand>* sink) ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND / ABORTED as for Heartbeat.
  absl::Status CheckWorker(const WorkerRef& worker) ABSL_LOCKS_EXCLUDED(mu_);
  // The rendezvous store (rendezvous.h), for the ranks of running attempts only, each
  // within its own attempt's keys (Rendezvous::AttemptPrefix, Assignment.store_prefix):
  // ABORTED for a worker in no attempt, then Rendezvous's errors: PERMISSION_DENIED for
  // another key, INVALID_ARGUMENT for an empty key or key list or a wait outside
  // [0, 1 h], RESOURCE_EXHAUSTED past 64 KiB a value or 4096 keys an attempt,
  // UNAVAILABLE once Shutdown has woken the waiters.
  absl::Status KeySet(const WorkerRef& worker, const std::string& key, const std::string& value)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::string> KeyGet(const WorkerRef& worker, const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status KeyWait(const WorkerRef& worker, const std::vector<std::string>& keys, absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(mu_);
  // One rank's shard: a range of the corpus's token file (sent as int32 little-endian).
  absl::StatusOr<ShardSource> Shard(const DownloadShardRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  // Where a kept checkpoint named by its id is, for a worker running one of that job's
  // attempts to download it (PERMISSION_DENIED for any other worker).
  // INVALID_ARGUMENT for an empty id.
  absl::StatusOr<std::string> CheckpointFile(const WorkerRef& worker, const std::string& job_id,
                                             const std::string& checkpoint_id) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status ReportMetrics(const ReportMetricsRequest& request) ABSL_LOCKS_EXCLUDED(mu_);
  // Records the rank's result (again is harmless) and waits up to `timeout` (at most
  // options.max_evaluation_wait; zero: not at all) for the round's decision;
  // DEADLINE_EXCEEDED if not every rank has reported by then. A duration, not a time:
  // the wait is the mutex's, in real time, whatever clock the coordinator was given.
  absl::StatusOr<EvaluationDecision> ReportEvaluation(const ReportEvaluationRequest& request, absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Starts an upload (checkpoint_upload.h) once `worker` is known to be rank 0 of the
  // running `attempt` (ABORTED, NOT_FOUND, INVALID_ARGUMENT otherwise), before any byte
  // is read. Finish keeps it only if the attempt is still current then: renamed into
  // place, recorded, retention applied; it answers once that is durable.
  absl::StatusOr<std::unique_ptr<CheckpointUpload>> BeginUpload(const WorkerRef& worker, const AttemptRef& attempt)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status FinishAssignment(const FinishAssignmentRequest& request) ABSL_LOCKS_EXCLUDED(mu_);

  // Declares workers whose heartbeats lapsed dead, failing their attempts, and forgets
  // those dead for longer than dead_worker_grace. The server calls it periodically;
  // tests call it after moving a FakeClock.
  void CheckHeartbeats() ABSL_LOCKS_EXCLUDED(mu_);
  // Wakes every waiter and closes every stream (UNAVAILABLE); later waits return at once.
  // No further attempt is prepared.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits for the attempt being prepared, if any; the rest are left to the next
  // coordinator (their jobs are QUEUED on disk).
  ~Coordinator();

  // What the corpus cache has done (hits, reads) and holds.
  // The token cache's directory (<state_dir>/corpora) and what it did.
  std::string TokenCacheDir() const { return options_.state_dir + "/corpora"; }
  TokenCache::Counts TokenCacheCounts() const { return corpora_.counts(); }

 private:
  // The JobManager's journal: queues its record writes (writer_) and events
  // (event_streams_). Called under mu_.
  class Journal : public JobJournal {
   public:
    explicit Journal(Coordinator* c) : c_(c) {}
    void Append(const JobRecord& record, const JobEvent* event) override;
    void Snapshot(const JobRecord& record) override;
    void Ended(const std::string& job_id) override;

   private:
    Coordinator* const c_;
  };

  Coordinator(const CoordinatorOptions& options, Clock* clock);

  // Sends watchers the events (and closes) whose record writes up to `durable` are done.
  void DeliverLocked(uint64_t durable) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `f` under the mutex; then, without it, has the jobs `f` reserved workers for
  // prepared (StartPreparing) and waits until what changed is on disk. A result whose change could not be written becomes
  // the write's error. Called without mu_ (not annotated: clang takes no attribute
  // before a trailing return type).
  template <typename F>
  auto Persisted(F f) -> decltype(f()) {
    std::optional<decltype(f())> result;
    uint64_t ticket = 0;
    {
      absl::MutexLock lock(&mu_);
      result.emplace(f());
      ticket = last_ticket_;
    }
    absl::Status written = MakeDurable(ticket);
    if (!written.ok() && result->ok()) return written;
    return *std::move(result);
  }
  // Persisted's second half, without the lock: has the jobs reserved meanwhile
  // prepared, waits until record writes up to `ticket` are on disk, delivers their
  // events, and fails the jobs whose writes failed (returning the write's error).
  absl::Status MakeDurable(uint64_t ticket) ABSL_LOCKS_EXCLUDED(mu_);
  // The jobs whose changes could not be written (a full or unwritable state_dir) fail,
  // naming the error (which names the path); a running one's ranks are told to stop,
  // and it is not restarted. The coordinator and every other job go on.
  void FailJobsNotSaved() ABSL_LOCKS_EXCLUDED(mu_);
  // An upload's verified staging file becomes kept checkpoint `info` (CheckpointUpload::Keep).
  absl::StatusOr<CheckpointInfo> KeepUpload(const WorkerRef& worker, const AttemptRef& ref, const std::string& staging,
                                            const CheckpointInfo& info) ABSL_LOCKS_EXCLUDED(mu_);
  // Has PrepareStarts run on preparer_ if the JobManager holds a pending start and it
  // is not running already.
  void StartPreparing() ABSL_LOCKS_EXCLUDED(mu_);
  // On preparer_: prepares the attempts the JobManager reserved workers for
  // (JobManager::TakePendingStart), one after another until none is left: the corpus
  // is got and the shards encoded without the lock, then FinishStart assigns the ranks,
  // and the change is made durable and its events delivered.
  void PrepareStarts() ABSL_LOCKS_EXCLUDED(mu_);
  // Removes the token cache's entries that no kept job's corpus has now (on the
  // preparer's thread; the cache leaves alone a corpus being tokenized).
  void CollectCorpora() ABSL_LOCKS_EXCLUDED(mu_);
  // On tokenizer_: tokenizes PREPARING job `job_id`'s corpus into the token cache
  // (Job.message follows its progress) and checks its splits' sizes; then the job is
  // QUEUED, or FAILED naming what is wrong.
  void PrepareCorpus(const std::string& job_id, const JobSpec& spec) ABSL_LOCKS_EXCLUDED(mu_);
  // The id and file path of the kept checkpoint `which` names (checkpoint_store.h).
  absl::StatusOr<std::pair<std::string, std::string>> KeptCheckpoint(const std::string& job_id,
                                                                     const std::string& which) ABSL_LOCKS_EXCLUDED(mu_);
  // "<job_id>/attempt-<n>/" of the attempt `worker` runs (or is reserved for); ABORTED
  // if none, NOT_FOUND / ABORTED as CheckWorker.
  absl::StatusOr<std::string> RendezvousPrefix(const WorkerRef& worker) ABSL_LOCKS_EXCLUDED(mu_);

  const CoordinatorOptions options_;
  Clock* const clock_;
  DataRoots data_roots_;  // Set once by Create.
  JobStore store_;
  JobRecordWriter writer_;
  ModelQueryRunner model_queries_;
  Rendezvous rendezvous_;                 // Thread-safe on its own; never waited on under mu_.
  WorkerCredentials credentials_;         // Thread-safe; its own lock.
  TokenCache corpora_;                    // Thread-safe; its own lock.
  std::atomic<uint64_t> next_upload_{1};  // Staging file names.
  // The lock of `job_id`'s checkpoint files, held while one of them moves (KeepUpload,
  // retention, DeleteJob); taken before mu_, never while holding it. One per job, so
  // that one job's upload never waits behind another job's files.
  std::shared_ptr<absl::Mutex> KeepLock(const std::string& job_id) ABSL_LOCKS_EXCLUDED(keep_locks_mu_);
  absl::Mutex keep_locks_mu_;
  std::map<std::string, std::shared_ptr<absl::Mutex>> keep_locks_ ABSL_GUARDED_BY(keep_locks_mu_);

  absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool preparing_ ABSL_GUARDED_BY(mu_) = false;     // PrepareStarts is queued or running.
  uint64_t last_ticket_ ABSL_GUARDED_BY(mu_) = 0;   // Of the latest queued record write.
  EventFanout event_streams_ ABSL_GUARDED_BY(mu_);  // WatchJob streams.
  // Workers: membership, reservations, command streams.
  WorkerRegistry workers_ ABSL_GUARDED_BY(mu_);
  // The registry's heartbeat table: thread-safe, used without mu_.
  HeartbeatTable* const heartbeats_;
  Journal journal_{this};
  // Jobs and attempts; uses workers_, rendezvous_ and journal_.
  JobManager jobs_ ABSL_GUARDED_BY(mu_);
  // Where PrepareStarts (and CollectCorpora) runs, and where PrepareCorpus runs: each a
  // ThreadExecutor (a corpus tokenized for minutes delays no other job's start), or
  // inline; last, so that they are gone before anything they use.
  std::unique_ptr<Executor> preparer_;
  std::unique_ptr<Executor> tokenizer_;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_COORDINATOR_H_
