#include "coordinator/coordinator.h"

#include <glog/logging.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/config.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"
#include "coordinator/checkpoint_store.h"

namespace ddlm {
namespace {

const char* SplitName(int split) {
  switch (split) {
    case TRAIN: return "train";
    case VALID: return "valid";
    case TEST: return "test";
  }
  return "?";
}

}  // namespace

Coordinator::Coordinator(const CoordinatorOptions& options, Clock* clock)
    : options_(options),
      clock_(clock),
      store_(options.state_dir),
      writer_(&store_, options.before_record_write_for_testing),
      model_queries_(options.model_queries),
      corpora_(options.state_dir + "/corpora"),
      workers_(options.heartbeat_timeout),
      heartbeats_(&workers_.heartbeats()),
      jobs_(clock, &workers_, &rendezvous_, &journal_),
      preparer_(options.prepare_on_own_thread ? std::unique_ptr<Executor>(new ThreadExecutor("ddlm-prepare"))
                                              : std::unique_ptr<Executor>(new InlineExecutor())),
      tokenizer_(options.prepare_on_own_thread ? std::unique_ptr<Executor>(new ThreadExecutor("ddlm-tokenize"))
                                               : std::unique_ptr<Executor>(new InlineExecutor())) {}

Coordinator::~Coordinator() {
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;  // PrepareStarts takes no further start, PrepareCorpus no corpus.
  }
  tokenizer_->Shutdown();  // A tokenization under way stops at its next chunk (its job stays PREPARING).
  preparer_->Shutdown();
}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(const CoordinatorOptions& options, Clock* clock) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("--state_dir is empty");
  std::unique_ptr<Coordinator> c(new Coordinator(options, clock));
  DDLM_ASSIGN_OR_RETURN(c->data_roots_, DataRoots::Create(options.data_roots.empty() ? std::vector<std::string>{"."}
                                                                                     : options.data_roots));
  DDLM_RETURN_IF_ERROR(c->store_.Init());
  std::vector<JobStore::SetAside> set_aside;
  DDLM_ASSIGN_OR_RETURN(std::vector<JobRecord> records, c->store_.LoadAll(&set_aside));
  const size_t loaded = records.size();
  c->mu_.Lock();
  for (JobRecord& record : records) c->jobs_.Load(std::move(record));
  LOG(INFO) << "loaded " << loaded << " job(s) from " << options.state_dir
            << (set_aside.empty() ? "" : absl::StrCat("; ", set_aside.size(), " damaged job(s) set aside"));
  c->jobs_.ReserveJobNumber(c->store_.LastDeletedJobNumber());
  for (const JobStore::SetAside& damaged : set_aside) {  // Their ids are never given again.
    c->jobs_.ReserveJobNumber(JobNumber(damaged.job_id));
  }
  const uint64_t ticket = c->last_ticket_;
  c->mu_.Unlock();
  DDLM_RETURN_IF_ERROR(c->writer_.Flush(ticket));
  c->mu_.Lock();
  c->DeliverLocked(ticket);
  c->mu_.Unlock();
  // Jobs that were PREPARING when the previous coordinator stopped are prepared again
  // (what it had tokenized is in the token cache).
  std::vector<std::pair<std::string, JobSpec>> preparing;
  c->mu_.Lock();
  for (const auto& job : c->jobs_.jobs()) {
    if (job->record.job().state() == PREPARING)
      preparing.emplace_back(job->record.job().id(), job->record.job().spec());
  }
  c->mu_.Unlock();
  for (auto& [id, spec] : preparing) {
    c->tokenizer_->Schedule([raw = c.get(), id = id, spec = spec] { raw->PrepareCorpus(id, spec); });
  }
  c->preparer_->Schedule([raw = c.get()] { raw->CollectCorpora(); });
  return c;
}

void Coordinator::CollectCorpora() {
  std::vector<std::string> paths;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& job : jobs_.jobs()) paths.push_back(job->record.job().spec().data().path());
  }
  std::set<std::string> keep;
  for (const std::string& path : paths) {
    absl::StatusOr<std::string> dir = data_roots_.ResolveCorpusDir(path);
    absl::StatusOr<std::string> key = dir.ok() ? TokenCache::KeyOf(*dir) : dir.status();
    if (key.ok()) keep.insert(*key);
  }
  absl::StatusOr<int> removed = corpora_.Collect(keep);
  if (!removed.ok()) {
    LOG(WARNING) << "token cache " << TokenCacheDir() << ": " << removed.status();
  } else if (*removed > 0) {
    LOG(INFO) << "token cache " << TokenCacheDir() << ": removed " << *removed << " corpora no job uses";
  }
}

void Coordinator::Journal::Append(const JobRecord& record, const JobEvent* event) {
  c_->mu_.AssertHeld();
  JobLogEntry entry;
  entry.set_generation(record.generation());
  *entry.mutable_job() = record.job();
  *entry.mutable_checkpoints() = record.checkpoints();
  if (event != nullptr) *entry.mutable_event() = *event;
  c_->last_ticket_ = c_->writer_.Append(record.job().id(), std::move(entry));
  // Watchers get the event once it is on disk (DeliverLocked), so that none ever sees
  // an event that a crash could take back.
  if (event != nullptr) c_->event_streams_.Enqueue(c_->last_ticket_, record.job().id(), *event);
}

void Coordinator::Journal::Snapshot(const JobRecord& record) {
  c_->mu_.AssertHeld();
  c_->last_ticket_ = c_->writer_.Snapshot(record);
}

void Coordinator::Journal::Ended(const std::string& job_id) {
  c_->mu_.AssertHeld();
  c_->event_streams_.EnqueueClose(c_->last_ticket_, job_id);
}

void Coordinator::DeliverLocked(uint64_t durable) {
  event_streams_.Deliver(durable, [&](const std::string& job_id, int64_t sequence) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    JobEntry* job = jobs_.Find(job_id);
    if (job == nullptr) return;
    job->delivered_through = sequence;
    if (options_.event_observer != nullptr && sequence >= 1 && sequence <= job->record.events_size()) {
      options_.event_observer->OnJobEvent(job->record.job(), job->record.events(static_cast<int>(sequence - 1)));
    }
  });
}

absl::StatusOr<Job> Coordinator::SubmitJob(const JobSpec& submitted, const std::string& owner) {
  JobSpec spec = submitted;
  ApplyDefaults(&spec);
  DDLM_RETURN_IF_ERROR(ValidateJobSpec(spec));
  if (spec.data().path().empty()) return absl::InvalidArgumentError("spec.data.path is empty");
  // What can be told at once is told by the call: a path outside the data roots, a
  // missing corpus file. The rest (tokenizing, the splits' sizes) takes as long as the
  // corpus is large: the job is PREPARING meanwhile, and FAILED if it is wrong.
  DDLM_ASSIGN_OR_RETURN(std::string dir, data_roots_.ResolveCorpusDir(spec.data().path()));
  DDLM_RETURN_IF_ERROR(TokenCache::KeyOf(dir).status());
  absl::StatusOr<Job> result = Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<Job> {
    return jobs_.Submit(spec, owner, /*preparing=*/true).record.job();
  });
  if (!result.ok()) return result;
  const std::string id = result->id();
  tokenizer_->Schedule([this, id, spec] { PrepareCorpus(id, spec); });
  // The job as it is now: with preparation inline (tests), already QUEUED or beyond.
  return GetJob(id);
}

void Coordinator::PrepareCorpus(const std::string& job_id, const JobSpec& spec) {
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;  // Left PREPARING on disk: the next coordinator prepares it.
  }
  if (options_.before_tokenize_for_testing) options_.before_tokenize_for_testing(job_id);
  int64_t text_bytes = 0;
  if (absl::StatusOr<std::string> dir = data_roots_.ResolveCorpusDir(spec.data().path()); dir.ok()) {
    for (const char* split : {"/train.txt", "/valid.txt", "/test.txt"}) {
      struct stat st {};
      if (::stat((*dir + split).c_str(), &st) == 0) text_bytes += static_cast<int64_t>(st.st_size);
    }
  }
  TokenizeOptions options;
  options.progress = [&](int64_t bytes_read, int64_t tokens_written) {
    // Both passes read the text: pass 1 builds the vocabulary, pass 2 writes the ids.
    const bool second = bytes_read > text_bytes;
    const std::string message = absl::StrFormat(
        "tokenizing its corpus: pass %d of 2, %.1f of %.1f MB read%s", second ? 2 : 1,
        static_cast<double>(second ? bytes_read - text_bytes : bytes_read) / 1e6, static_cast<double>(text_bytes) / 1e6,
        second ? absl::StrFormat(", %d tokens written", tokens_written) : "");
    absl::MutexLock lock(&mu_);
    jobs_.SetPreparingProgress(job_id, message);
  };
  // A coordinator asked to stop does not wait for a large corpus: the job stays
  // PREPARING, for the next one.
  options.stop = [this] {
    absl::MutexLock lock(&mu_);
    return shutdown_;
  };
  const absl::Status prepared = ReadJobCorpus(spec, data_roots_, &corpora_, options).status();
  if (!prepared.ok()) LOG(WARNING) << "job " << job_id << ": its corpus: " << prepared;
  (void)Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!shutdown_) jobs_.Prepared(job_id, prepared);
    return absl::OkStatus();
  });
}

absl::StatusOr<Job> Coordinator::GetJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, jobs_.FindJob(job_id));
  return job->record.job();
}

absl::StatusOr<std::string> Coordinator::JobOwner(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, jobs_.FindJob(job_id));
  return job->record.job().owner();
}

std::vector<Job> Coordinator::ListJobs() {
  absl::MutexLock lock(&mu_);
  std::vector<Job> out;
  for (const auto& job : jobs_.jobs()) out.push_back(job->record.job());
  return out;
}

absl::StatusOr<Job> Coordinator::CancelJob(const std::string& job_id) {
  return Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return jobs_.Cancel(job_id); });
}

absl::StatusOr<Job> Coordinator::ResumeJob(const ResumeJobRequest& request) {
  absl::StatusOr<Job> result = Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return jobs_.Resume(request); });
  // The job as it is now: the call may also have started it.
  if (!result.ok()) return result;
  return GetJob(result->id());
}

void Coordinator::FailJobsNotSaved() {
  std::map<std::string, absl::Status> failed = writer_.TakeFailedJobs();
  if (failed.empty()) return;
  uint64_t ticket = 0;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, status] : failed) {
      jobs_.FailNotSaved(id, absl::StrCat("the coordinator cannot save the job's record: ", status.message()));
    }
    jobs_.Schedule();  // Their workers may be free for others.
    ticket = last_ticket_;
  }
  // The failed state's own snapshot may not be writable either: the job then reloads as
  // it last was on disk (whole: its log takes nothing after a failed append).
  if (absl::Status s = writer_.Flush(ticket); !s.ok()) LOG(ERROR) << "after a failed write: " << s;
  (void)writer_.TakeFailedJobs();
  {
    absl::MutexLock lock(&mu_);
    DeliverLocked(ticket);
  }
  StartPreparing();
}

absl::Status Coordinator::DeleteJob(const std::string& job_id) {
  // No upload of the job moves a file meanwhile.
  const std::shared_ptr<absl::Mutex> keep_lock = KeepLock(job_id);
  absl::MutexLock keeping(keep_lock.get());
  uint64_t ticket = 0;
  {
    absl::MutexLock lock(&mu_);
    DDLM_RETURN_IF_ERROR(jobs_.Erase(job_id));
    ticket = last_ticket_;
  }
  // Its last writes (the final snapshot) land before its files go; then, without the
  // lock, the files go.
  (void)writer_.Flush(ticket);
  {
    absl::MutexLock lock(&mu_);
    DeliverLocked(ticket);
  }
  DDLM_RETURN_IF_ERROR(store_.DeleteJob(job_id));
  {
    absl::MutexLock lock(&keep_locks_mu_);
    keep_locks_.erase(job_id);  // Its id is never given again.
  }
  if (options_.event_observer != nullptr) options_.event_observer->OnJobDeleted(job_id);
  LOG(INFO) << "job " << job_id << " deleted";
  preparer_->Schedule([this] { CollectCorpora(); });
  return absl::OkStatus();
}

absl::StatusOr<std::vector<CheckpointInfo>> Coordinator::ListCheckpoints(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, jobs_.FindJob(job_id));
  return std::vector<CheckpointInfo>(job->record.checkpoints().begin(), job->record.checkpoints().end());
}

absl::StatusOr<std::pair<std::string, std::string>> Coordinator::KeptCheckpoint(const std::string& job_id,
                                                                                const std::string& which) {
  absl::MutexLock lock(&mu_);
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, jobs_.FindJob(job_id));
  DDLM_ASSIGN_OR_RETURN(std::string id, ResolveCheckpoint(job->record.checkpoints(), which, job_id));
  std::string path = store_.CheckpointPath(job_id, id);
  return std::make_pair(std::move(id), std::move(path));
}

absl::StatusOr<std::string> Coordinator::KeptCheckpointPath(const std::string& job_id, const std::string& which) {
  DDLM_ASSIGN_OR_RETURN(auto kept, KeptCheckpoint(job_id, which));
  return kept.second;
}

absl::StatusOr<GenerateResponse> Coordinator::Generate(const GenerateRequest& request, const GenerateSink& sink) {
  DDLM_RETURN_IF_ERROR(CheckGenerateRequest(request, model_queries_.limits()));  // Before any lookup.
  DDLM_ASSIGN_OR_RETURN(auto kept, KeptCheckpoint(request.job_id(), request.checkpoint()));
  // Without the lock, in the runner's few slots.
  return model_queries_.Generate(kept.second, kept.first, request, sink);
}

absl::StatusOr<ScoreTextResponse> Coordinator::ScoreText(const ScoreTextRequest& request) {
  DDLM_RETURN_IF_ERROR(CheckScoreRequest(request, model_queries_.limits()));
  DDLM_ASSIGN_OR_RETURN(auto kept, KeptCheckpoint(request.job_id(), request.checkpoint()));
  if (!request.has_file()) {
    return model_queries_.Score(kept.second, kept.first, request,
                                [&]() -> absl::StatusOr<std::string> { return request.text(); });
  }
  // data_roots_ is set once by Create: read without the lock.
  DDLM_ASSIGN_OR_RETURN(std::string path, data_roots_.ResolveFile(request.file(), "file"));
  const int64_t limit = model_queries_.limits().max_file_bytes;
  // Read in the query's slot, and never more than the limit (a file may grow).
  return model_queries_.Score(kept.second, kept.first, request, [&]() -> absl::StatusOr<std::string> {
    DDLM_ASSIGN_OR_RETURN(std::string text, ReadFilePrefix(path, limit + 1));
    if (static_cast<int64_t>(text.size()) > limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("file '", request.file(), "' is over the limit of ", limit, " bytes"));
    }
    return text;
  });
}

absl::StatusOr<AttentionResponse> Coordinator::Attention(const AttentionRequest& request) {
  DDLM_RETURN_IF_ERROR(CheckAttentionRequest(request, model_queries_.limits()));
  DDLM_ASSIGN_OR_RETURN(auto kept, KeptCheckpoint(request.job_id(), request.checkpoint()));
  return model_queries_.Attention(kept.second, kept.first, request);
}

std::vector<WorkerInfo> Coordinator::ListWorkers() {
  absl::MutexLock lock(&mu_);
  return workers_.List();
}

// ---------------------------------------------------------------- workers

absl::StatusOr<RegisterResponse> Coordinator::Register(const RegisterRequest& request, const std::string& credential) {
  const std::string& id = request.worker().worker_id();
  // A registration that cannot succeed binds nothing (it would lock the id out).
  DDLM_RETURN_IF_ERROR(WorkerRegistry::Validate(request.worker(), request.host(), request.device()));
  // Refused before anything changes: an impostor cannot replace a live worker.
  DDLM_ASSIGN_OR_RETURN(const bool bound_now, credentials_.Bind(id, credential));
  absl::StatusOr<RegisterResponse> result =
      Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<RegisterResponse> {
        // Again under the lock that forgetting a worker takes, so that the binding holds.
        DDLM_RETURN_IF_ERROR(credentials_.Bind(id, credential).status());
        DDLM_ASSIGN_OR_RETURN(std::optional<WorkerEntry> replaced,
                              workers_.Register(request.worker(), request.host(), request.device(), clock_->Now()));
        workers_.CloseStream(
            request.worker().worker_id(),
            absl::AbortedError(absl::StrCat("worker '", request.worker().worker_id(),
                                            "' registered again (incarnation ", request.worker().incarnation(), ")")));
        if (replaced) {
          jobs_.WorkerLost(*replaced,
                           absl::StrCat("worker '", request.worker().worker_id(), "' restarted (new incarnation ",
                                        request.worker().incarnation(), ")"));
        }
        LOG(INFO) << "worker " << request.worker().worker_id() << " incarnation " << request.worker().incarnation()
                  << " registered (" << request.host() << ", " << request.device() << ")";
        jobs_.Schedule();
        RegisterResponse response;
        response.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
        response.set_heartbeat_timeout_ms(absl::ToInt64Milliseconds(options_.heartbeat_timeout));
        return response;
      });
  if (!result.ok() && bound_now) {
    absl::MutexLock lock(&mu_);
    if (workers_.Get(id) == nullptr) credentials_.Forget(id);  // Nothing registered it.
  }
  return result;
}

absl::Status Coordinator::Heartbeat(const WorkerRef& worker) {
  // Without mu_: a heartbeat never waits behind scheduling or an event's bookkeeping.
  return heartbeats_->Beat(worker, clock_->Now());
}

absl::Status Coordinator::Deregister(const WorkerRef& worker) {
  return Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    DDLM_ASSIGN_OR_RETURN(WorkerEntry * w, workers_.Find(worker));
    const WorkerEntry before = *w;
    workers_.MarkDead(worker.worker_id(), clock_->Now());
    workers_.CloseStream(worker.worker_id(),
                         absl::AbortedError(absl::StrCat("worker '", worker.worker_id(), "' left")));
    LOG(INFO) << "worker " << worker.worker_id() << " incarnation " << worker.incarnation() << " left";
    jobs_.WorkerLost(before,
                     absl::StrCat("worker '", worker.worker_id(), "' (rank ", before.info.rank(), ") shut down"));
    jobs_.Schedule();
    return absl::OkStatus();
  });
}

absl::Status Coordinator::CheckWorkerCredential(const std::string& worker_id, const std::string& credential) const {
  return credentials_.Check(worker_id, credential);
}

absl::Status Coordinator::CheckWorker(const WorkerRef& worker) {
  absl::MutexLock lock(&mu_);
  return workers_.Find(worker).status();
}

absl::StatusOr<std::string> Coordinator::RendezvousPrefix(const WorkerRef& worker) {
  absl::MutexLock lock(&mu_);
  DDLM_ASSIGN_OR_RETURN(WorkerEntry * w, workers_.Find(worker));
  if (w->info.state() != BUSY || w->info.job_id().empty()) {
    return absl::AbortedError(absl::StrCat("worker '", worker.worker_id(), "' runs no attempt"));
  }
  return Rendezvous::AttemptPrefix(w->info.job_id(), w->attempt);
}

// The worker's attempt is looked up under mu_; the store is used after releasing it.
absl::Status Coordinator::KeySet(const WorkerRef& worker, const std::string& key, const std::string& value) {
  DDLM_ASSIGN_OR_RETURN(std::string prefix, RendezvousPrefix(worker));
  return rendezvous_.Set(prefix, key, value);
}

absl::StatusOr<std::string> Coordinator::KeyGet(const WorkerRef& worker, const std::string& key) {
  DDLM_ASSIGN_OR_RETURN(std::string prefix, RendezvousPrefix(worker));
  return rendezvous_.Get(prefix, key);
}

absl::Status Coordinator::KeyWait(const WorkerRef& worker, const std::vector<std::string>& keys,
                                  absl::Duration timeout) {
  DDLM_ASSIGN_OR_RETURN(std::string prefix, RendezvousPrefix(worker));
  return rendezvous_.Wait(prefix, keys, timeout);
}

absl::StatusOr<std::string> Coordinator::CheckpointFile(const WorkerRef& worker, const std::string& job_id,
                                                        const std::string& checkpoint_id) {
  DDLM_ASSIGN_OR_RETURN(std::string prefix, RendezvousPrefix(worker));
  if (prefix.compare(0, job_id.size() + 1, job_id + "/") != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("worker '", worker.worker_id(), "' runs no attempt of job '", job_id, "'"));
  }
  // Workers name the exact checkpoint the assignment gave them, never "best".
  if (checkpoint_id.empty()) return absl::InvalidArgumentError("checkpoint_id is empty");
  return KeptCheckpointPath(job_id, checkpoint_id);
}

void Coordinator::CheckHeartbeats() {
  absl::Status written = Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    for (const WorkerEntry& dead : workers_.ExpireStale(clock_->Now())) {
      LOG(WARNING) << "worker " << dead.info.worker_id() << " incarnation " << dead.info.incarnation()
                   << " missed its heartbeats; declared dead";
      workers_.CloseStream(
          dead.info.worker_id(),
          absl::AbortedError(absl::StrCat("worker '", dead.info.worker_id(), "' incarnation ", dead.info.incarnation(),
                                          " was declared dead (missed heartbeats); register again")));
      jobs_.WorkerLost(dead, absl::StrCat("worker '", dead.info.worker_id(), "' (rank ", dead.info.rank(),
                                          ") stopped heartbeating"));
    }
    for (const std::string& id : workers_.PruneDead(clock_->Now(), options_.dead_worker_grace)) {
      credentials_.Forget(id);  // The id is free for any worker credential again.
      LOG(INFO) << "worker " << id << " forgotten (dead for over " << absl::FormatDuration(options_.dead_worker_grace)
                << ")";
    }
    jobs_.Schedule();
    return absl::OkStatus();
  });
  if (!written.ok()) LOG(ERROR) << "after missed heartbeats: " << written;
}

void Coordinator::Shutdown() {
  rendezvous_.Shutdown();  // Its waiters hold no coordinator lock.
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  const absl::Status closing = absl::UnavailableError("the coordinator is shutting down");
  workers_.CloseAllStreams(closing);
  event_streams_.CloseAll(closing);
}

absl::Status Coordinator::AttachEventStream(const std::string& job_id, int64_t after_sequence,
                                            StreamSink<JobEvent>* sink) {
  if (after_sequence < 0) {
    return absl::InvalidArgumentError(absl::StrCat("after_sequence must be >= 0, got ", after_sequence));
  }
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the coordinator is shutting down");
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, jobs_.FindJob(job_id));
  const int64_t through = std::min<int64_t>(job->delivered_through, job->record.events_size());
  const bool done = IsFinalJobState(job->record.job().state()) && through == job->record.events_size() &&
                    !event_streams_.Pending(job_id);
  if (!done && event_streams_.watchers() >= options_.max_event_streams) {
    return absl::ResourceExhaustedError(absl::StrCat(options_.max_event_streams,
                                                     " WatchJob streams are open, the most this coordinator "
                                                     "serves; close one first"));
  }
  // The durable backlog; the rest follows as it reaches the disk.
  for (int64_t i = after_sequence; i < through; ++i) sink->Send(job->record.events(static_cast<int>(i)));
  if (done) {
    sink->Close(absl::OkStatus());
  } else {
    event_streams_.Attach(job_id, after_sequence, sink);
  }
  return absl::OkStatus();
}

void Coordinator::DetachEventStream(StreamSink<JobEvent>* sink) {
  absl::MutexLock lock(&mu_);
  event_streams_.Detach(sink);
}

absl::Status Coordinator::AttachCommandStream(const WorkerRef& worker, StreamSink<WorkerCommand>* sink) {
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the coordinator is shutting down");
  return workers_.AttachStream(worker, sink);
}

void Coordinator::DetachCommandStream(StreamSink<WorkerCommand>* sink) {
  absl::MutexLock lock(&mu_);
  workers_.DetachStream(sink);
}

// ---------------------------------------------------------------- starting attempts

void Coordinator::StartPreparing() {
  {
    absl::MutexLock lock(&mu_);
    if (preparing_ || shutdown_ || !jobs_.HasPendingStart()) return;
    preparing_ = true;
  }
  if (!preparer_->Schedule([this] { PrepareStarts(); })) {
    absl::MutexLock lock(&mu_);
    preparing_ = false;  // Shut down.
  }
}

void Coordinator::PrepareStarts() {
  for (;;) {
    std::optional<PendingStart> start;
    {
      absl::MutexLock lock(&mu_);
      if (!shutdown_) start = jobs_.TakePendingStart();
      if (!start) {
        preparing_ = false;
        return;
      }
    }
    if (options_.before_prepare_for_testing) options_.before_prepare_for_testing(start->job_id);
    // Without the lock: reading a corpus and encoding its shards take seconds for a
    // large one, and heartbeats, queries and other jobs' events go on meanwhile.
    absl::StatusOr<PreparedAttempt> prepared = [&]() -> absl::StatusOr<PreparedAttempt> {
      DDLM_ASSIGN_OR_RETURN(JobCorpus corpus, ReadJobCorpus(start->spec, data_roots_, &corpora_));
      return PrepareAttempt(start->spec, corpus, start->world);
    }();
    uint64_t ticket = 0;
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_) {  // Left QUEUED on disk for the next coordinator.
        preparing_ = false;
        return;
      }
      jobs_.FinishStart(*start, std::move(prepared));
      ticket = last_ticket_;
    }
    // RUNNING (or FAILED) on disk before any watcher hears it.
    absl::Status written = writer_.Flush(ticket);
    {
      absl::MutexLock lock(&mu_);
      DeliverLocked(ticket);
    }
    if (!written.ok()) FailJobsNotSaved();
  }
}

absl::StatusOr<ShardSource> Coordinator::Shard(const DownloadShardRequest& request) {
  absl::MutexLock lock(&mu_);
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, jobs_.FindAttempt(request.worker(), request.attempt()));
  if (request.split() < TRAIN || request.split() > TEST) {
    return absl::InvalidArgumentError(absl::StrCat("split ", request.split(), " is not TRAIN, VALID or TEST"));
  }
  return job->attempt->shards[request.attempt().rank()][request.split() - TRAIN];
}

absl::Status Coordinator::ReportMetrics(const ReportMetricsRequest& request) {
  return Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return jobs_.ReportMetrics(request); });
}

absl::StatusOr<EvaluationDecision> Coordinator::ReportEvaluation(const ReportEvaluationRequest& request,
                                                                 absl::Duration timeout) {
  if (request.split() != VALID && request.split() != TEST) {
    return absl::InvalidArgumentError("split must be VALID or TEST");
  }
  if (request.tokens() <= 0 || request.tokens() > (int64_t{1} << 48)) {
    return absl::InvalidArgumentError(absl::StrCat("tokens must be in [1, 2^48], got ", request.tokens()));
  }
  if (!std::isfinite(request.loss_sum()) || request.loss_sum() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("loss_sum must be finite and >= 0, got ", request.loss_sum()));
  }
  const Split split = request.split();
  const int32_t epoch = request.epoch();
  timeout = std::min(timeout, options_.max_evaluation_wait);
  return Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<EvaluationDecision> {
    DDLM_ASSIGN_OR_RETURN(JobEntry * job, jobs_.FindAttempt(request.worker(), request.attempt()));
    const int32_t number = job->attempt->number;
    DDLM_RETURN_IF_ERROR(jobs_.RecordEvaluation(*job, request));
    auto current = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return job->attempt && job->attempt->number == number && !job->attempt->ended;
    };
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return shutdown_ || !current() || job->attempt->cancel_requested || !job->attempt->failure.empty() ||
             job->attempt->rounds.Decision(split, epoch).has_value();
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    // A decided round is answered even if a cancel came later, so that every rank sees
    // the same outcome and takes the same next collective step.
    if (current()) {
      if (std::optional<EvaluationDecision> decision = job->attempt->rounds.Decision(split, epoch)) {
        return *decision;
      }
    }
    if (!current() || job->attempt->cancel_requested || !job->attempt->failure.empty() || shutdown_) {
      return absl::AbortedError(
          absl::StrCat("job '", request.attempt().job_id(), "' attempt ", number, " was cancelled or failed"));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("not every rank reported its ", SplitName(split), " loss for epoch ", epoch, " in time"));
  });
}

absl::StatusOr<std::unique_ptr<CheckpointUpload>> Coordinator::BeginUpload(const WorkerRef& worker,
                                                                           const AttemptRef& ref) {
  CheckpointUpload::Expected expected;
  {
    absl::MutexLock lock(&mu_);
    DDLM_ASSIGN_OR_RETURN(JobEntry * job, jobs_.FindAttempt(worker, ref));
    if (ref.rank() != 0) {
      return absl::InvalidArgumentError(absl::StrCat("only rank 0 uploads checkpoints, not rank ", ref.rank()));
    }
    expected.max_bytes = job->attempt->max_checkpoint_bytes;
    expected.vocabulary_size = job->attempt->vocabulary_size;
    expected.model = job->record.job().spec().model();
  }
  // A staging name of its own: renamed over the final one only if the attempt is still
  // current when it is complete, so a late upload never replaces a kept file.
  return CheckpointUpload::Create(
      &store_, ref, absl::StrCat("upload-", ref.attempt(), "-", next_upload_.fetch_add(1), ".partial"),
      std::move(expected), [this, worker, ref](const std::string& staging, const CheckpointInfo& info) {
        return KeepUpload(worker, ref, staging, info);
      });
}

std::shared_ptr<absl::Mutex> Coordinator::KeepLock(const std::string& job_id) {
  absl::MutexLock lock(&keep_locks_mu_);
  std::shared_ptr<absl::Mutex>& keep = keep_locks_[job_id];
  if (keep == nullptr) keep = std::make_shared<absl::Mutex>();
  return keep;
}

absl::Status Coordinator::MakeDurable(uint64_t ticket) {
  StartPreparing();
  absl::Status written = writer_.Flush(ticket);
  {
    absl::MutexLock lock(&mu_);
    DeliverLocked(ticket);
  }
  if (!written.ok()) FailJobsNotSaved();
  return written;
}

absl::StatusOr<CheckpointInfo> Coordinator::KeepUpload(const WorkerRef& worker, const AttemptRef& ref,
                                                       const std::string& staging, const CheckpointInfo& info) {
  const std::string job_id = ref.job_id();
  const std::shared_ptr<absl::Mutex> keep_lock = KeepLock(job_id);
  std::vector<std::string> doomed;
  uint64_t ticket = 0;
  {
    // One move at a time among this job's checkpoint files; they move without mu_.
    absl::MutexLock keeping(keep_lock.get());
    {
      absl::MutexLock lock(&mu_);
      DDLM_RETURN_IF_ERROR(jobs_.FindAttempt(worker, ref).status());
    }
    // The rename and the directory's fsync. A file kept under the same id (a resumed
    // attempt writes it again) keeps a second name meanwhile, so that it can be put
    // back if the attempt ended while the file moved.
    const std::string previous = absl::StrCat(staging, ".previous");
    DDLM_ASSIGN_OR_RETURN(const bool replacing, store_.LinkCheckpoint(job_id, info.id(), previous));
    if (absl::Status renamed = store_.RenameCheckpoint(job_id, staging, info.id()); !renamed.ok()) {
      if (replacing) (void)store_.DeleteCheckpoint(job_id, previous);
      return renamed;
    }
    if (options_.after_checkpoint_rename_for_testing) options_.after_checkpoint_rename_for_testing();
    absl::Status current;
    {
      absl::MutexLock lock(&mu_);
      absl::StatusOr<JobEntry*> job = jobs_.FindAttempt(worker, ref);  // Again: it may have ended.
      current = job.status();
      if (job.ok()) doomed = jobs_.KeepCheckpoint(**job, info);
      ticket = last_ticket_;
    }
    if (!current.ok()) {
      // Not kept after all: the files are as they were before this upload.
      absl::Status undone =
          replacing ? store_.RenameCheckpoint(job_id, previous, info.id()) : store_.DeleteCheckpoint(job_id, info.id());
      if (!undone.ok()) LOG(ERROR) << "after a late upload: " << undone;
      return current;
    }
    if (replacing) (void)store_.DeleteCheckpoint(job_id, previous);
  }
  DDLM_RETURN_IF_ERROR(MakeDurable(ticket));
  // Retention deletes the files the record dropped only once that record is on disk
  // (a crash in between leaves a stray file, never a record naming a missing one),
  // without mu_, and not one that a later upload has kept again meanwhile.
  absl::MutexLock keeping(keep_lock.get());
  for (const std::string& id : doomed) {
    bool kept_again = false;
    {
      absl::MutexLock lock(&mu_);
      if (const JobEntry* job = jobs_.Find(job_id); job != nullptr) {
        for (const CheckpointInfo& c : job->record.checkpoints()) kept_again = kept_again || c.id() == id;
      }
    }
    if (kept_again) continue;
    if (absl::Status s = store_.DeleteCheckpoint(job_id, id); !s.ok()) LOG(ERROR) << s;
  }
  return info;
}

absl::Status Coordinator::FinishAssignment(const FinishAssignmentRequest& request) {
  return Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return jobs_.FinishAssignment(request); });
}

}  // namespace ddlm
