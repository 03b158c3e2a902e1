#include "coordinator/coordinator.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/checkpoint.h"
#include "common/config.h"
#include "common/file_io.h"
#include "common/sharding.h"
#include "common/status_macros.h"
#include "coordinator/attempt_rounds.h"
#include "coordinator/checkpoint_store.h"
#include "coordinator/scheduler.h"

namespace ddlm {
namespace {

bool IsFinal(JobState s) { return s == SUCCEEDED || s == FAILED || s == CANCELLED; }

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
      generator_(options.generation),
      workers_(options.heartbeat_timeout),
      heartbeats_(&workers_.heartbeats()) {}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(const CoordinatorOptions& options,
                                                                 Clock* clock) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("--state_dir is empty");
  std::unique_ptr<Coordinator> c(new Coordinator(options, clock));
  DDLM_ASSIGN_OR_RETURN(c->data_roots_,
                        DataRoots::Create(options.data_roots.empty() ? std::vector<std::string>{"."}
                                                                     : options.data_roots));
  DDLM_RETURN_IF_ERROR(c->store_.Init());
  std::vector<JobStore::SetAside> set_aside;
  DDLM_ASSIGN_OR_RETURN(std::vector<JobRecord> records, c->store_.LoadAll(&set_aside));
  c->mu_.Lock();
  for (JobRecord& record : records) {
    auto job = std::make_unique<JobEntry>();
    job->record = std::move(record);
    job->delivered_through = job->record.events_size();  // Read from disk.
    const Job& j = job->record.job();
    c->next_job_number_ = std::max(c->next_job_number_, JobNumber(j.id()) + 1);
    job->lr = j.spec().optimizer().lr();
    if (j.state() == RUNNING) {
      // The attempt died with the previous coordinator (its workers register again
      // with new incarnations): a failure like any other, restarted if allowed.
      c->RestartOrFailLocked(*job, absl::StrCat("the coordinator restarted during attempt ", j.attempt()));
    } else if (j.state() == QUEUED && !j.resumed_from().empty()) {
      for (const CheckpointInfo& ckpt : job->record.checkpoints()) {
        if (ckpt.id() == j.resumed_from()) c->ResumeFromLocked(*job, &ckpt);
      }
    }
    c->jobs_.push_back(std::move(job));
  }
  LOG(INFO) << "loaded " << c->jobs_.size() << " job(s) from " << options.state_dir
            << (set_aside.empty() ? "" : absl::StrCat("; ", set_aside.size(), " damaged job(s) set aside"));
  c->next_job_number_ = std::max(c->next_job_number_, c->store_.LastDeletedJobNumber() + 1);
  for (const JobStore::SetAside& damaged : set_aside) {  // Their ids are never given again.
    c->next_job_number_ = std::max(c->next_job_number_, JobNumber(damaged.job_id) + 1);
  }
  const uint64_t ticket = c->last_ticket_;
  c->mu_.Unlock();
  DDLM_RETURN_IF_ERROR(c->writer_.Flush(ticket));
  c->mu_.Lock();
  c->DeliverLocked(ticket);
  c->mu_.Unlock();
  return c;
}

Coordinator::JobEntry* Coordinator::FindLocked(const std::string& job_id) {
  for (auto& job : jobs_) {
    if (job->record.job().id() == job_id) return job.get();
  }
  return nullptr;
}

absl::StatusOr<Coordinator::JobEntry*> Coordinator::FindJobLocked(const std::string& job_id) {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id is empty");
  JobEntry* job = FindLocked(job_id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("job_id '", job_id, "': no such job"));
  return job;
}

void Coordinator::SaveLocked(JobEntry& job, const JobEvent* event) {
  job.record.mutable_job()->set_num_checkpoints(job.record.checkpoints_size());
  JobLogEntry entry;
  entry.set_generation(job.record.generation());
  *entry.mutable_job() = job.record.job();
  *entry.mutable_checkpoints() = job.record.checkpoints();
  if (event != nullptr) *entry.mutable_event() = *event;
  last_ticket_ = writer_.Append(job.record.job().id(), std::move(entry));
}

void Coordinator::SnapshotLocked(JobEntry& job) {
  job.record.mutable_job()->set_num_checkpoints(job.record.checkpoints_size());
  job.record.set_generation(job.record.generation() + 1);
  last_ticket_ = writer_.Snapshot(job.record);
}

void Coordinator::AddEventLocked(JobEntry& job, JobEvent event) {
  event.set_sequence(job.record.events_size() + 1);
  job.record.mutable_job()->set_last_event_sequence(event.sequence());
  event.set_unix_micros(absl::ToUnixMicros(clock_->Now()));
  *job.record.add_events() = event;
  SaveLocked(job, &event);
  // Watchers get it once it is on disk (DeliverLocked), so that none ever sees an
  // event that a crash could take back.
  event_streams_.Enqueue(last_ticket_, job.record.job().id(), std::move(event));
}

void Coordinator::DeliverLocked(uint64_t durable) {
  event_streams_.Deliver(durable, [&](const std::string& job_id, int64_t sequence) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    JobEntry* job = FindLocked(job_id);
    if (job == nullptr) return;
    job->delivered_through = sequence;
    if (options_.event_observer != nullptr && sequence >= 1 && sequence <= job->record.events_size()) {
      options_.event_observer->OnJobEvent(job->record.job(), job->record.events(static_cast<int>(sequence - 1)));
    }
  });
}

void Coordinator::SetStateLocked(JobEntry& job, JobState state, const std::string& message,
                                 int32_t restart) {
  Job& j = *job.record.mutable_job();
  j.set_state(state);
  j.set_message(message);
  if (IsFinal(state)) j.set_finished_unix_seconds(absl::ToUnixSeconds(clock_->Now()));
  JobEvent event;
  event.mutable_state()->set_state(state);
  event.mutable_state()->set_message(message);
  event.mutable_state()->set_attempt(j.attempt());
  event.mutable_state()->set_restart(restart);
  LOG(INFO) << "job " << j.id() << ": " << JobState_Name(state)
            << (message.empty() ? "" : ": " + message);
  AddEventLocked(job, std::move(event));
  if (IsFinal(state)) {
    // A job that ended is compacted: its snapshot takes in the log. Its watchers are
    // closed once they have had every event.
    SnapshotLocked(job);
    event_streams_.EnqueueClose(last_ticket_, j.id());
  }
}

absl::StatusOr<Job> Coordinator::SubmitJob(const JobSpec& submitted, const std::string& owner) {
  JobSpec spec = submitted;
  ApplyDefaults(&spec);
  DDLM_RETURN_IF_ERROR(ValidateJobSpec(spec));
  if (spec.data().path().empty()) return absl::InvalidArgumentError("spec.data.path is empty");
  // Tokenizing a large corpus takes seconds: do it before taking the lock.
  DDLM_ASSIGN_OR_RETURN(std::shared_ptr<const JobCorpus> data, ReadJobCorpus(spec, data_roots_));
  absl::StatusOr<Job> result = Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<Job> {
    auto job = std::make_unique<JobEntry>();
    Job& j = *job->record.mutable_job();
    j.set_id(absl::StrCat("job-", next_job_number_++));
    j.set_name(spec.name().empty() ? j.id() : spec.name());
    j.set_owner(owner);
    *j.mutable_spec() = spec;
    j.set_submitted_unix_seconds(absl::ToUnixSeconds(clock_->Now()));
    job->data = std::move(data);
    job->lr = spec.optimizer().lr();
    JobEntry& entry = *job;
    jobs_.push_back(std::move(job));
    SnapshotLocked(entry);  // The job's directory and first snapshot, then its log.
    SetStateLocked(entry, QUEUED, "");
    ScheduleLocked();
    // A job that must wait holds no corpus meanwhile; it reads it again when it starts.
    if (!entry.starting) entry.data.reset();
    return entry.record.job();
  });
  // The job as it is now: the call may also have started it.
  if (!result.ok()) return result;
  return GetJob(result->id());
}

absl::StatusOr<Job> Coordinator::GetJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJobLocked(job_id));
  return job->record.job();
}

absl::StatusOr<std::string> Coordinator::JobOwner(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJobLocked(job_id));
  return job->record.job().owner();
}

std::vector<Job> Coordinator::ListJobs() {
  absl::MutexLock lock(&mu_);
  std::vector<Job> out;
  for (const auto& job : jobs_) out.push_back(job->record.job());
  return out;
}

absl::StatusOr<Job> Coordinator::CancelJob(const std::string& job_id) {
  return Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<Job> {
    DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJobLocked(job_id));
    const JobState state = job->record.job().state();
    if (IsFinal(state)) {
      return absl::FailedPreconditionError(
          absl::StrCat("job '", job_id, "' already finished (", JobState_Name(state), ")"));
    }
    if (state == QUEUED) {
      ReleaseReservationLocked(*job);
      SetStateLocked(*job, CANCELLED, "cancelled while queued");
      ScheduleLocked();
    } else if (job->attempt && !job->attempt->cancel_requested) {
      job->attempt->cancel_requested = true;
      job->record.mutable_job()->set_message("cancelling: waiting for the workers to stop");
      SaveLocked(*job);
      CancelRanksLocked(*job);
    }
    return job->record.job();
  });
}

absl::StatusOr<Job> Coordinator::ResumeJob(const ResumeJobRequest& request) {
  absl::StatusOr<Job> result = Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<Job> {
    DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJobLocked(request.job_id()));
    Job& j = *job->record.mutable_job();
    if (!IsFinal(j.state())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "job '", j.id(), "' is ", JobState_Name(j.state()), "; only a finished job can be resumed"));
    }
    if (job->record.checkpoints().empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("job '", j.id(), "' has no checkpoint to resume from"));
    }
    const CheckpointInfo* from = &job->record.checkpoints(job->record.checkpoints_size() - 1);
    if (!request.checkpoint_id().empty()) {
      from = nullptr;
      for (const CheckpointInfo& c : job->record.checkpoints()) {
        if (c.id() == request.checkpoint_id()) from = &c;
      }
      if (from == nullptr) {
        return absl::NotFoundError(absl::StrCat("checkpoint_id '", request.checkpoint_id(),
                                                "': job '", j.id(), "' keeps no such checkpoint"));
      }
    }
    if (request.has_num_workers()) {
      if (request.num_workers() < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("num_workers must be >= 1, got ", request.num_workers()));
      }
      const int32_t wrote = from->world_size() != 0 ? from->world_size() : j.spec().num_workers();
      if (request.num_workers() != wrote && from->batch() != 0) {
        if (!request.checkpoint_id().empty()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "checkpoint ", from->id(), " is mid-epoch (epoch ", from->epoch(), ", batch ", from->batch(),
              "): a resume on ", request.num_workers(), " worker(s) instead of ", wrote,
              " starts from an epoch-end checkpoint (batch 0)"));
        }
        from = LatestEpochEndLocked(*job);
        if (from == nullptr) {
          return absl::FailedPreconditionError(absl::StrCat(
              "job '", j.id(), "' keeps no epoch-end checkpoint to resume on another number of workers from"));
        }
      }
    }
    if (request.has_epochs()) {
      const int32_t min_epochs = from->batch() > 0 ? from->epoch() : from->epoch() - 1;
      if (request.epochs() < std::max(min_epochs, 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "epochs ", request.epochs(), " is below the checkpoint's position (epoch ",
            from->epoch(), ", batch ", from->batch(), ")"));
      }
      j.mutable_spec()->mutable_schedule()->set_epochs(request.epochs());
    }
    // Everything checked: only now does the job change.
    if (request.has_num_workers()) {
      j.mutable_spec()->set_num_workers(request.num_workers());
      j.mutable_spec()->set_min_workers(std::min(j.spec().min_workers(), request.num_workers()));
    }
    ResumeFromLocked(*job, from);
    j.set_restarts(0);  // A person resumed it: the automatic restarts count again.
    SetStateLocked(*job, QUEUED, absl::StrCat("resuming from checkpoint ", from->id()));
    ScheduleLocked();
    return j;
  });
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
      JobEntry* job = FindLocked(id);
      if (job == nullptr || IsFinal(job->record.job().state())) continue;
      const std::string why = absl::StrCat("the coordinator cannot save the job's record: ", status.message());
      if (job->attempt && !job->attempt->ended) {
        Attempt& a = *job->attempt;
        if (a.failure.empty() && !a.cancel_requested) {
          LOG(ERROR) << "job " << id << " attempt " << a.number << " fails: " << why;
          a.failure = why;
          a.not_saved = true;
          CancelRanksLocked(*job);
        }
      } else {
        ReleaseReservationLocked(*job);
        SetStateLocked(*job, FAILED, why);
      }
    }
    ticket = last_ticket_;
  }
  // The failed state's own snapshot may not be writable either: the job then reloads as
  // it last was on disk (whole: its log takes nothing after a failed append).
  if (absl::Status s = writer_.Flush(ticket); !s.ok()) LOG(ERROR) << "after a failed write: " << s;
  (void)writer_.TakeFailedJobs();
  absl::MutexLock lock(&mu_);
  DeliverLocked(ticket);
}

absl::Status Coordinator::DeleteJob(const std::string& job_id) {
  uint64_t ticket = 0;
  {
    absl::MutexLock lock(&mu_);
    DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJobLocked(job_id));
    const JobState state = job->record.job().state();
    if (!IsFinal(state)) {
      return absl::FailedPreconditionError(absl::StrCat("job '", job_id, "' is ", JobState_Name(state),
                                                        "; cancel it before deleting it"));
    }
    jobs_.erase(std::find_if(jobs_.begin(), jobs_.end(),
                             [&](const auto& j) { return j.get() == job; }));
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
  if (options_.event_observer != nullptr) options_.event_observer->OnJobDeleted(job_id);
  LOG(INFO) << "job " << job_id << " deleted";
  return absl::OkStatus();
}

void Coordinator::ResumeFromLocked(JobEntry& job, const CheckpointInfo* from) {
  Job& j = *job.record.mutable_job();
  job.resume_checkpoint.clear();
  job.resume_best.clear();
  job.best_val_loss.reset();
  j.clear_best_val_ppl();
  j.clear_test_ppl();
  j.clear_resumed_from();
  if (from == nullptr) {  // From the start: the first attempt again.
    job.lr = j.spec().optimizer().lr();
    j.set_global_step(0);
    j.set_epoch(0);
    return;
  }
  job.resume_checkpoint = from->id();
  job.lr = from->lr();
  if (from->has_best_val_loss()) {
    job.best_val_loss = from->best_val_loss();
    j.set_best_val_ppl(std::exp(from->best_val_loss()));
    // The weights of that best loss, from this timeline (not from a later one that the
    // resume abandons), if still kept.
    for (const CheckpointInfo& c : job.record.checkpoints()) {
      if (c.has_val_loss() && c.val_loss() == from->best_val_loss() &&
          c.global_step() <= from->global_step()) {
        job.resume_best = c.id();
      }
    }
  }
  j.set_resumed_from(from->id());
  j.set_global_step(from->global_step());
}

void Coordinator::RestartOrFailLocked(JobEntry& job, const std::string& why) {
  Job& j = *job.record.mutable_job();
  const int32_t allowed = j.spec().max_restarts();
  if (j.restarts() >= allowed) {
    SetStateLocked(job, FAILED,
                   allowed == 0 ? why
                                : absl::StrCat(why, " (after ", j.restarts(),
                                               " automatic restart(s); spec.max_restarts is ",
                                               allowed, ")"));
    return;
  }
  j.set_restarts(j.restarts() + 1);
  // The latest kept checkpoint: with the same number of workers, training goes on
  // exactly as if the attempt had never failed.
  const CheckpointInfo* from =
      job.record.checkpoints().empty() ? nullptr
                                       : &job.record.checkpoints(job.record.checkpoints_size() - 1);
  ResumeFromLocked(job, from);
  SetStateLocked(job, QUEUED,
                 absl::StrCat("restart ", j.restarts(), " of ", allowed, ": attempt ", j.attempt(),
                              " failed (", why, "); ",
                              from == nullptr ? "starting over (no checkpoint kept yet)"
                                              : absl::StrCat("resuming from checkpoint ", from->id())),
                 j.restarts());
}

absl::StatusOr<std::vector<CheckpointInfo>> Coordinator::ListCheckpoints(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJobLocked(job_id));
  return std::vector<CheckpointInfo>(job->record.checkpoints().begin(),
                                     job->record.checkpoints().end());
}

absl::StatusOr<std::pair<std::string, std::string>> Coordinator::KeptCheckpoint(
    const std::string& job_id, const std::string& which) {
  absl::MutexLock lock(&mu_);
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJobLocked(job_id));
  DDLM_ASSIGN_OR_RETURN(std::string id, ResolveCheckpoint(job->record.checkpoints(), which, job_id));
  std::string path = store_.CheckpointPath(job_id, id);
  return std::make_pair(std::move(id), std::move(path));
}

absl::StatusOr<std::string> Coordinator::KeptCheckpointPath(const std::string& job_id,
                                                            const std::string& which) {
  DDLM_ASSIGN_OR_RETURN(auto kept, KeptCheckpoint(job_id, which));
  return kept.second;
}

absl::StatusOr<GenerateResponse> Coordinator::Generate(const GenerateRequest& request) {
  DDLM_ASSIGN_OR_RETURN(GenerateOptions options, generator_.ParseRequest(request));  // Before any lookup.
  DDLM_ASSIGN_OR_RETURN(auto kept, KeptCheckpoint(request.job_id(), request.checkpoint()));
  // Without the lock, in the generator's few slots.
  return generator_.Generate(kept.second, kept.first, options);
}

std::vector<WorkerInfo> Coordinator::ListWorkers() {
  absl::MutexLock lock(&mu_);
  return workers_.List();
}

// ---------------------------------------------------------------- workers

absl::StatusOr<RegisterResponse> Coordinator::Register(const RegisterRequest& request,
                                                      const std::string& credential) {
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
                          workers_.Register(request.worker(), request.host(), request.device(),
                                            clock_->Now()));
    CloseCommandStreamLocked(request.worker().worker_id(),
                             absl::AbortedError(absl::StrCat("worker '", request.worker().worker_id(),
                                                             "' registered again (incarnation ",
                                                             request.worker().incarnation(), ")")));
    if (replaced) {
      WorkerLostLocked(*replaced, absl::StrCat("worker '", request.worker().worker_id(),
                                               "' restarted (new incarnation ",
                                               request.worker().incarnation(), ")"));
    }
    LOG(INFO) << "worker " << request.worker().worker_id() << " incarnation "
              << request.worker().incarnation() << " registered (" << request.host() << ", "
              << request.device() << ")";
    ScheduleLocked();
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
    CloseCommandStreamLocked(worker.worker_id(),
                             absl::AbortedError(absl::StrCat("worker '", worker.worker_id(), "' left")));
    LOG(INFO) << "worker " << worker.worker_id() << " incarnation " << worker.incarnation() << " left";
    WorkerLostLocked(before, absl::StrCat("worker '", worker.worker_id(), "' (rank ",
                                          before.info.rank(), ") shut down"));
    ScheduleLocked();
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
absl::Status Coordinator::KeySet(const WorkerRef& worker, const std::string& key,
                                 const std::string& value) {
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
      LOG(WARNING) << "worker " << dead.info.worker_id() << " incarnation "
                   << dead.info.incarnation() << " missed its heartbeats; declared dead";
      CloseCommandStreamLocked(
          dead.info.worker_id(),
          absl::AbortedError(absl::StrCat("worker '", dead.info.worker_id(), "' incarnation ",
                                          dead.info.incarnation(),
                                          " was declared dead (missed heartbeats); register again")));
      WorkerLostLocked(dead, absl::StrCat("worker '", dead.info.worker_id(), "' (rank ",
                                          dead.info.rank(), ") stopped heartbeating"));
    }
    for (const std::string& id : workers_.PruneDead(clock_->Now(), options_.dead_worker_grace)) {
      credentials_.Forget(id);  // The id is free for any worker credential again.
      LOG(INFO) << "worker " << id << " forgotten (dead for over "
                << absl::FormatDuration(options_.dead_worker_grace) << ")";
    }
    ScheduleLocked();
    return absl::OkStatus();
  });
  if (!written.ok()) LOG(ERROR) << "after missed heartbeats: " << written;
}

void Coordinator::WorkerLostLocked(const WorkerEntry& worker, const std::string& why) {
  if (worker.info.state() != BUSY) return;
  JobEntry* job = FindLocked(worker.info.job_id());
  if (job != nullptr && job->starting && job->starting->number == worker.attempt) {
    // Reserved for a job whose shards are being prepared: the job goes back to the
    // queue (nothing ran yet), and the other reserved workers are free again.
    LOG(INFO) << "job " << job->record.job().id() << ": " << why << " before the attempt started";
    ReleaseReservationLocked(*job);
    return;
  }
  if (job == nullptr || !job->attempt || job->attempt->number != worker.attempt) return;
  RankStoppedLocked(*job, worker.info.rank(), why);
}

void Coordinator::Shutdown() {
  rendezvous_.Shutdown();  // Its waiters hold no coordinator lock.
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  const absl::Status closing = absl::UnavailableError("the coordinator is shutting down");
  for (auto& [id, sink] : command_streams_) sink->Close(closing);
  command_streams_.clear();
  event_streams_.CloseAll(closing);
}

absl::Status Coordinator::AttachEventStream(const std::string& job_id, int64_t after_sequence,
                                            StreamSink<JobEvent>* sink) {
  if (after_sequence < 0) {
    return absl::InvalidArgumentError(absl::StrCat("after_sequence must be >= 0, got ", after_sequence));
  }
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the coordinator is shutting down");
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJobLocked(job_id));
  const int64_t through = std::min<int64_t>(job->delivered_through, job->record.events_size());
  const bool done = IsFinal(job->record.job().state()) && through == job->record.events_size() &&
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
  DDLM_ASSIGN_OR_RETURN(WorkerEntry * w, workers_.Find(worker));
  CloseCommandStreamLocked(worker.worker_id(),
                           absl::AbortedError("another StreamCommands call for this worker replaced this one"));
  command_streams_[worker.worker_id()] = sink;
  while (!w->outbox.empty()) {
    sink->Send(w->outbox.front());
    w->outbox.pop_front();
  }
  return absl::OkStatus();
}

void Coordinator::DetachCommandStream(StreamSink<WorkerCommand>* sink) {
  absl::MutexLock lock(&mu_);
  for (auto it = command_streams_.begin(); it != command_streams_.end(); ++it) {
    if (it->second == sink) {
      command_streams_.erase(it);
      return;
    }
  }
}

void Coordinator::SendCommandLocked(WorkerEntry& worker, WorkerCommand command) {
  if (auto it = command_streams_.find(worker.info.worker_id()); it != command_streams_.end()) {
    it->second->Send(command);
    return;
  }
  worker.outbox.push_back(std::move(command));
}

void Coordinator::CloseCommandStreamLocked(const std::string& worker_id, const absl::Status& status) {
  if (auto it = command_streams_.find(worker_id); it != command_streams_.end()) {
    it->second->Close(status);
    command_streams_.erase(it);
  }
}

// ---------------------------------------------------------------- scheduling

void Coordinator::ScheduleLocked() {
  std::vector<QueuedJob> queue;
  std::vector<JobEntry*> queued;
  for (auto& job : jobs_) {
    const Job& j = job->record.job();
    if (j.state() != QUEUED || job->starting) continue;
    // A restarted job that can no longer get num_workers (fewer are alive) may go on
    // with fewer, down to spec.min_workers.
    const bool fewer = j.restarts() > 0 && j.spec().min_workers() < j.spec().num_workers() &&
                       workers_.live_count() < j.spec().num_workers();
    queue.push_back({j.id(), j.spec().num_workers(),
                     fewer ? j.spec().min_workers() : j.spec().num_workers()});
    queued.push_back(job.get());
  }
  if (queue.empty()) return;
  std::vector<FreeWorker> free;
  for (const WorkerEntry* w : workers_.Idle()) free.push_back({w->info.worker_id(), w->info.device()});
  const SchedulePlan plan = PlanSchedule(queue, free, workers_.live_count());
  for (const Placement& p : plan.start) {
    std::vector<WorkerEntry*> chosen;
    for (const std::string& id : p.workers) chosen.push_back(workers_.Get(id));
    ReserveLocked(*FindLocked(p.job_id), chosen);
  }
  for (JobEntry* job : queued) {
    auto why = plan.waiting.find(job->record.job().id());
    if (why == plan.waiting.end()) continue;
    std::string message = why->second;
    if (!job->resume_checkpoint.empty()) {
      message = absl::StrCat("resuming from checkpoint ", job->resume_checkpoint, "; ", message);
    }
    if (job->record.job().message() != message) {
      job->record.mutable_job()->set_message(message);
      SaveLocked(*job);
    }
  }
}

void Coordinator::ReserveLocked(JobEntry& job, const std::vector<WorkerEntry*>& workers) {
  Job& j = *job.record.mutable_job();
  const int world = static_cast<int>(workers.size());
  if (world != j.spec().num_workers()) {
    // Fewer workers than before (spec.min_workers): num_workers becomes what there is.
    job.reshard_note = absl::StrCat("; on ", world, " worker(s) instead of ", j.spec().num_workers(),
                                    " (fewer are left; spec.min_workers ", j.spec().min_workers(), ")");
    j.mutable_spec()->set_num_workers(world);
    j.mutable_spec()->set_min_workers(std::min(j.spec().min_workers(), world));
  }
  ReshardIfNeededLocked(job);
  Start start;
  start.number = j.attempt() + 1;
  for (size_t r = 0; r < workers.size(); ++r) {
    WorkerEntry& w = *workers[r];
    start.workers.push_back(w.info.worker_id());
    w.info.set_state(BUSY);
    w.info.set_job_id(j.id());
    w.info.set_rank(static_cast<int32_t>(r));
    w.attempt = start.number;
  }
  job.starting = std::move(start);
  j.set_message(absl::StrCat("starting on ", workers.size(), " worker(s): preparing the shards"));
  SaveLocked(job);
  pending_starts_.push_back(j.id());
}

const CheckpointInfo* Coordinator::FindCheckpointLocked(const JobEntry& job, const std::string& id) {
  for (const CheckpointInfo& c : job.record.checkpoints()) {
    if (c.id() == id) return &c;
  }
  return nullptr;
}

const CheckpointInfo* Coordinator::LatestEpochEndLocked(const JobEntry& job) {
  const CheckpointInfo* latest = nullptr;
  for (const CheckpointInfo& c : job.record.checkpoints()) {
    if (c.batch() == 0) latest = &c;
  }
  return latest;
}

void Coordinator::ReshardIfNeededLocked(JobEntry& job) {
  const int world = job.record.job().spec().num_workers();
  const CheckpointInfo* from = FindCheckpointLocked(job, job.resume_checkpoint);
  if (from == nullptr || from->world_size() == 0 || from->world_size() == world) return;
  const int32_t wrote = from->world_size();
  // Written by another number of workers: each rank's recurrent state and data slice
  // belong to that sharding, so the job goes on from an epoch end, resharded.
  if (from->batch() != 0) {
    from = LatestEpochEndLocked(job);
    ResumeFromLocked(job, from);
  }
  absl::StrAppend(&job.reshard_note, "; resharded from ",
                  from == nullptr ? "the start" : absl::StrCat("epoch-end checkpoint ", from->id()),
                  " (written by ", wrote,
                  " worker(s)): from here on the run is not bit-identical to an uninterrupted one");
}

void Coordinator::ReleaseReservationLocked(JobEntry& job) {
  if (!job.starting) return;
  for (const std::string& id : job.starting->workers) {
    WorkerEntry* w = workers_.Get(id);
    if (w != nullptr && w->info.state() == BUSY && w->info.job_id() == job.record.job().id() &&
        w->attempt == job.starting->number) {
      w->info.set_state(IDLE);
      w->info.clear_job_id();
      w->info.set_rank(0);
      w->attempt = 0;
    }
  }
  job.starting.reset();
}

uint64_t Coordinator::RunPendingStarts() {
  uint64_t ticket = 0;
  for (;;) {
    std::string job_id;
    JobSpec spec;
    std::shared_ptr<const JobCorpus> data;
    int world = 0;
    int32_t number = 0;
    {
      absl::MutexLock lock(&mu_);
      if (pending_starts_.empty()) return ticket;
      job_id = std::move(pending_starts_.front());
      pending_starts_.pop_front();
      JobEntry* job = FindLocked(job_id);
      if (job == nullptr || !job->starting) continue;  // Cancelled meanwhile.
      spec = job->record.job().spec();
      data = std::move(job->data);
      world = static_cast<int>(job->starting->workers.size());
      number = job->starting->number;
    }
    if (options_.before_prepare_for_testing) options_.before_prepare_for_testing(job_id);
    // Without the lock: reading a corpus and encoding its shards take seconds for a
    // large one, and heartbeats, queries and other jobs' events go on meanwhile.
    // A job reads its corpus again when it starts (a queued job holds none), unless the
    // submission that just read it started the job at once.
    absl::StatusOr<PreparedAttempt> prepared = [&]() -> absl::StatusOr<PreparedAttempt> {
      if (data == nullptr) {
        DDLM_ASSIGN_OR_RETURN(data, ReadJobCorpus(spec, data_roots_));
      }
      return PrepareAttempt(spec, *data, world);
    }();
    data.reset();  // The corpus is freed once the shards are made.
    absl::MutexLock lock(&mu_);
    JobEntry* job = FindLocked(job_id);
    if (job != nullptr && job->starting && job->starting->number == number) {
      StartAttemptLocked(*job, std::move(prepared));
      ScheduleLocked();
    }
    ticket = last_ticket_;
  }
}

void Coordinator::StartAttemptLocked(JobEntry& job, absl::StatusOr<PreparedAttempt> prepared) {
  Job& j = *job.record.mutable_job();
  if (!prepared.ok()) {
    ReleaseReservationLocked(job);
    SetStateLocked(job, FAILED, std::string(prepared.status().message()));
    return;
  }
  const Start start = *job.starting;
  const int world = static_cast<int>(start.workers.size());
  std::vector<WorkerEntry*> workers;
  for (const std::string& id : start.workers) {
    WorkerEntry* w = workers_.Get(id);
    if (w == nullptr || w->info.state() != BUSY || w->info.job_id() != j.id() ||
        w->attempt != start.number) {
      // A reserved worker is gone (WorkerLostLocked releases the reservation at once;
      // this is the same check at the last moment): back to the queue.
      ReleaseReservationLocked(job);
      return;
    }
    workers.push_back(w);
  }
  Attempt attempt;
  attempt.number = start.number;
  attempt.finished.assign(world, false);
  attempt.rounds = AttemptRounds(world);
  attempt.shards = std::move(prepared->shards);
  attempt.max_checkpoint_bytes = prepared->max_checkpoint_bytes;
  attempt.vocabulary_size = prepared->vocabulary_size;
  j.set_attempt(attempt.number);
  j.clear_workers();
  j.set_started_unix_seconds(absl::ToUnixSeconds(clock_->Now()));
  j.set_finished_unix_seconds(0);
  const std::string prefix = Rendezvous::AttemptPrefix(j.id(), attempt.number);
  for (int r = 0; r < world; ++r) {
    WorkerEntry& w = *workers[r];
    j.add_workers(w.info.worker_id());
    attempt.workers.push_back(w.info.worker_id());
    WorkerCommand& command = prepared->commands[r];
    Assignment& a = *command.mutable_assign();
    a.mutable_attempt()->set_job_id(j.id());
    a.mutable_attempt()->set_attempt(attempt.number);
    a.set_resume_checkpoint_id(job.resume_checkpoint);
    a.set_best_checkpoint_id(job.resume_best);
    a.set_store_prefix(prefix);
    SendCommandLocked(w, std::move(command));
  }
  job.starting.reset();
  job.attempt = std::move(attempt);
  std::string note = std::move(job.reshard_note);
  job.reshard_note.clear();
  SetStateLocked(job, RUNNING,
                 absl::StrCat("attempt ", j.attempt(), " on ", world, " worker(s)",
                              job.resume_checkpoint.empty()
                                  ? ""
                                  : absl::StrCat(", resuming from ", job.resume_checkpoint),
                              note));
}

void Coordinator::CancelRanksLocked(JobEntry& job) {
  Attempt& a = *job.attempt;
  for (size_t r = 0; r < a.workers.size(); ++r) {
    if (a.finished[r]) continue;
    WorkerEntry* w = workers_.Get(a.workers[r]);
    if (w == nullptr || w->info.state() != BUSY || w->attempt != a.number) continue;
    WorkerCommand command;
    command.mutable_cancel()->set_job_id(job.record.job().id());
    command.mutable_cancel()->set_attempt(a.number);
    command.mutable_cancel()->set_rank(static_cast<int32_t>(r));
    SendCommandLocked(*w, std::move(command));
  }
}

void Coordinator::RankStoppedLocked(JobEntry& job, int rank, const std::string& failure) {
  Attempt& a = *job.attempt;
  if (rank < 0 || rank >= static_cast<int>(a.finished.size()) || a.finished[rank]) return;
  a.finished[rank] = true;
  if (WorkerEntry* w = workers_.Get(a.workers[rank]);
      w != nullptr && w->info.state() == BUSY && w->attempt == a.number) {
    w->info.set_state(IDLE);
    w->info.clear_job_id();
    w->info.set_rank(0);
    w->attempt = 0;
  }
  if (!failure.empty() && a.failure.empty() && !a.cancel_requested) {
    a.failure = failure;
    LOG(WARNING) << "job " << job.record.job().id() << " attempt " << a.number << " fails: " << failure;
    CancelRanksLocked(job);
  }
  if (std::all_of(a.finished.begin(), a.finished.end(), [](bool f) { return f; })) {
    EndAttemptLocked(job);
  }
}

void Coordinator::EndAttemptLocked(JobEntry& job) {
  Attempt& a = *job.attempt;
  a.ended = true;
  rendezvous_.EndAttempt(Rendezvous::AttemptPrefix(job.record.job().id(), a.number));
  JobState state;
  std::string message;
  if (!a.failure.empty()) {
    state = FAILED;
    message = a.failure;
  } else if (a.cancel_requested) {
    state = CANCELLED;
    message = "cancelled";
  } else if (a.tested) {
    state = SUCCEEDED;
  } else {
    state = FAILED;
    message = "the workers finished without a test result";
  }
  const bool failed = !a.failure.empty();
  const bool not_saved = a.not_saved;
  job.attempt.reset();  // `a` is gone.
  job.resume_checkpoint.clear();
  job.resume_best.clear();
  job.data.reset();  // Reloaded if the job is resumed or restarted.
  if (failed && !not_saved) {
    RestartOrFailLocked(job, message);
  } else {
    SetStateLocked(job, state, message);
  }
  ScheduleLocked();
}

absl::StatusOr<Coordinator::JobEntry*> Coordinator::FindAttemptLocked(const WorkerRef& worker,
                                                                       const AttemptRef& ref) {
  DDLM_RETURN_IF_ERROR(workers_.Find(worker).status());
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJobLocked(ref.job_id()));
  if (!job->attempt || job->attempt->number != ref.attempt() || job->attempt->ended) {
    return absl::AbortedError(absl::StrCat("job '", ref.job_id(), "' attempt ", ref.attempt(),
                                           " is not running (job is ",
                                           JobState_Name(job->record.job().state()), ")"));
  }
  if (ref.rank() < 0 || ref.rank() >= static_cast<int>(job->attempt->workers.size())) {
    return absl::InvalidArgumentError(absl::StrCat("attempt.rank ", ref.rank(), " is outside [0, ",
                                                    job->attempt->workers.size(), ")"));
  }
  if (job->attempt->workers[ref.rank()] != worker.worker_id()) {
    return absl::AbortedError(absl::StrCat("worker '", worker.worker_id(), "' is not rank ",
                                           ref.rank(), " of job '", ref.job_id(), "'"));
  }
  return job;
}

absl::StatusOr<std::shared_ptr<const std::string>> Coordinator::Shard(
    const DownloadShardRequest& request) {
  absl::MutexLock lock(&mu_);
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindAttemptLocked(request.worker(), request.attempt()));
  if (request.split() < TRAIN || request.split() > TEST) {
    return absl::InvalidArgumentError(absl::StrCat("split ", request.split(), " is not TRAIN, VALID or TEST"));
  }
  return job->attempt->shards[request.attempt().rank()][request.split() - TRAIN];
}


absl::Status Coordinator::ReportMetrics(const ReportMetricsRequest& request) {
  return Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindAttemptLocked(request.worker(), request.attempt()));
    DDLM_ASSIGN_OR_RETURN(std::optional<TrainingMetrics> combined,
                          job->attempt->rounds.ReportMetrics(request.attempt().rank(), request.metrics()));
    if (!combined) return absl::OkStatus();  // Not every rank yet.
    Job& j = *job->record.mutable_job();
    *j.mutable_last_training() = *combined;
    j.set_epoch(combined->epoch());
    j.set_global_step(std::max(j.global_step(), request.global_step()));
    JobEvent event;
    *event.mutable_training() = *combined;
    AddEventLocked(*job, std::move(event));
    return absl::OkStatus();
  });
}

absl::StatusOr<EvaluationDecision> Coordinator::ReportEvaluation(
    const ReportEvaluationRequest& request, absl::Duration timeout) {
  if (request.split() != VALID && request.split() != TEST) {
    return absl::InvalidArgumentError("split must be VALID or TEST");
  }
  if (request.tokens() <= 0 || request.tokens() > (int64_t{1} << 48)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokens must be in [1, 2^48], got ", request.tokens()));
  }
  if (!std::isfinite(request.loss_sum()) || request.loss_sum() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("loss_sum must be finite and >= 0, got ", request.loss_sum()));
  }
  const Split split = request.split();
  const int32_t epoch = request.epoch();
  timeout = std::min(timeout, options_.max_evaluation_wait);
  return Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<EvaluationDecision> {
    DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindAttemptLocked(request.worker(), request.attempt()));
    const int32_t number = job->attempt->number;
    {
      Attempt& a = *job->attempt;
      if (!a.rounds.Decision(split, epoch) && (a.cancel_requested || !a.failure.empty())) {
        // Every rank of an undecided round gets the same answer, so none goes on to a
        // collective that the others have left.
        return absl::AbortedError(absl::StrCat("job '", request.attempt().job_id(), "' attempt ",
                                               number, " was cancelled or failed"));
      }
      DDLM_ASSIGN_OR_RETURN(std::optional<AttemptRounds::Evaluation> done,
                            a.rounds.ReportEvaluation(request.attempt().rank(), split, epoch,
                                                      request.loss_sum(), request.tokens(),
                                                      request.seconds()));
      if (done) {  // This report completed the round: decide it, once.
        EvaluationDecision decision;
        decision.set_loss(done->loss);
        decision.set_tokens(done->tokens);
        JobEvent event;
        Job& j = *job->record.mutable_job();
        if (split == VALID) {
          const ValidationOutcome outcome = DecideAfterValidation(
              done->loss, job->best_val_loss, job->lr, j.spec().optimizer().anneal_factor());
          job->lr = outcome.lr;
          if (outcome.best) {
            job->best_val_loss = done->loss;
            j.set_best_val_ppl(std::exp(done->loss));
          }
          decision.set_best(outcome.best);
          decision.set_lr(job->lr);
          EpochResult& e = *event.mutable_epoch();
          e.set_epoch(epoch);
          e.set_val_loss(done->loss);
          e.set_val_ppl(std::exp(done->loss));
          e.set_val_tokens(done->tokens);
          e.set_lr(job->lr);
          e.set_best(outcome.best);
          e.set_seconds(done->seconds);
          j.set_epoch(epoch);
        } else {
          a.tested = true;
          TestResult& t = *event.mutable_test();
          t.set_test_loss(done->loss);
          t.set_test_ppl(std::exp(done->loss));
          t.set_test_tokens(done->tokens);
          j.set_test_ppl(std::exp(done->loss));
        }
        a.rounds.Decide(split, epoch, decision);
        AddEventLocked(*job, std::move(event));
      }
    }
    auto current = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return job->attempt && job->attempt->number == number && !job->attempt->ended;
    };
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return shutdown_ || !current() || job->attempt->cancel_requested ||
             !job->attempt->failure.empty() || job->attempt->rounds.Decision(split, epoch).has_value();
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
      return absl::AbortedError(absl::StrCat("job '", request.attempt().job_id(), "' attempt ",
                                             number, " was cancelled or failed"));
    }
    return absl::DeadlineExceededError(absl::StrCat("not every rank reported its ", SplitName(split),
                                                    " loss for epoch ", epoch, " in time"));
  });
}

absl::StatusOr<std::unique_ptr<CheckpointUpload>> Coordinator::BeginUpload(const WorkerRef& worker,
                                                                           const AttemptRef& ref) {
  CheckpointUpload::Expected expected;
  {
    absl::MutexLock lock(&mu_);
    DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindAttemptLocked(worker, ref));
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

absl::StatusOr<CheckpointInfo> Coordinator::KeepUpload(const WorkerRef& worker, const AttemptRef& ref,
                                                       const std::string& staging, const CheckpointInfo& info) {
  const std::string job_id = ref.job_id();
  std::vector<std::string> doomed;
  absl::StatusOr<CheckpointInfo> stored =
      Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<CheckpointInfo> {
    DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindAttemptLocked(worker, ref));
    DDLM_RETURN_IF_ERROR(store_.RenameCheckpoint(job_id, staging, info.id()));
    doomed = AddToKept(job->record.mutable_checkpoints(), info,
                       job->record.job().spec().checkpoint().keep_last());
    JobEvent event;
    *event.mutable_checkpoint() = info;
    AddEventLocked(*job, std::move(event));
    return info;
  });
  // Retention deletes the files the record dropped only once that record is on disk
  // (a crash in between leaves a stray file, never a record naming a missing one),
  // and without the lock.
  if (stored.ok()) {
    for (const std::string& id : doomed) {
      if (absl::Status s = store_.DeleteCheckpoint(job_id, id); !s.ok()) LOG(ERROR) << s;
    }
  }
  return stored;
}

absl::Status Coordinator::FinishAssignment(const FinishAssignmentRequest& request) {
  return Persisted([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    DDLM_ASSIGN_OR_RETURN(WorkerEntry * w, workers_.Find(request.worker()));
    JobEntry* job = FindLocked(request.attempt().job_id());
    if (job == nullptr || !job->attempt || job->attempt->number != request.attempt().attempt()) {
      // A stale attempt (already ended): just free the worker.
      if (w->info.state() == BUSY && w->info.job_id() == request.attempt().job_id() &&
          w->attempt == request.attempt().attempt()) {
        w->info.set_state(IDLE);
        w->info.clear_job_id();
        w->attempt = 0;
        ScheduleLocked();
      }
      return absl::OkStatus();
    }
    DDLM_RETURN_IF_ERROR(FindAttemptLocked(request.worker(), request.attempt()).status());
    std::string failure;
    if (!request.ok() && !request.cancelled()) {
      failure = absl::StrCat("rank ", request.attempt().rank(), " (worker '",
                             request.worker().worker_id(), "') failed: ", request.error());
    }
    RankStoppedLocked(*job, request.attempt().rank(), failure);
    ScheduleLocked();
    return absl::OkStatus();
  });
}

}  // namespace ddlm
