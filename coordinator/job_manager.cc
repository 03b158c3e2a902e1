#include "coordinator/job_manager.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/base/validation_rule.h"
#include "coordinator/checkpoint_store.h"
#include "coordinator/job_store.h"
#include "coordinator/scheduler.h"

namespace ddlm {

bool IsFinalJobState(JobState s) { return s == SUCCEEDED || s == FAILED || s == CANCELLED; }

JobManager::JobManager(Clock* clock, WorkerRegistry* workers, Rendezvous* rendezvous, JobJournal* journal)
    : clock_(clock), workers_(workers), rendezvous_(rendezvous), journal_(journal) {}

void JobManager::Load(JobRecord record) {
  auto job = std::make_unique<JobEntry>();
  job->record = std::move(record);
  job->delivered_through = job->record.events_size();  // Read from disk.
  const Job& j = job->record.job();
  ReserveJobNumber(JobNumber(j.id()));
  job->lr = j.spec().optimizer().lr();
  if (j.state() == RUNNING) {
    // The attempt died with the previous coordinator (its workers register again
    // with new incarnations): a failure like any other, restarted if allowed.
    RestartOrFail(*job, absl::StrCat("the coordinator restarted during attempt ", j.attempt()));
  } else if (j.state() == QUEUED && !j.resumed_from().empty()) {
    if (const CheckpointInfo* from = FindCheckpoint(*job, j.resumed_from()); from != nullptr) {
      ResumeFrom(*job, from);
    }
  }
  jobs_.push_back(std::move(job));
}

void JobManager::ReserveJobNumber(int64_t number) { next_job_number_ = std::max(next_job_number_, number + 1); }

JobEntry* JobManager::Find(const std::string& job_id) {
  for (auto& job : jobs_) {
    if (job->record.job().id() == job_id) return job.get();
  }
  return nullptr;
}

absl::StatusOr<JobEntry*> JobManager::FindJob(const std::string& job_id) {
  if (job_id.empty()) return absl::InvalidArgumentError("job_id is empty");
  JobEntry* job = Find(job_id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("job_id '", job_id, "': no such job"));
  return job;
}

absl::StatusOr<JobEntry*> JobManager::FindAttempt(const WorkerRef& worker, const AttemptRef& ref) {
  DDLM_RETURN_IF_ERROR(workers_->Find(worker).status());
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJob(ref.job_id()));
  if (!job->attempt || job->attempt->number != ref.attempt() || job->attempt->ended) {
    return absl::AbortedError(absl::StrCat("job '", ref.job_id(), "' attempt ", ref.attempt(),
                                           " is not running (job is ", JobState_Name(job->record.job().state()), ")"));
  }
  if (ref.rank() < 0 || ref.rank() >= static_cast<int>(job->attempt->workers.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("attempt.rank ", ref.rank(), " is outside [0, ", job->attempt->workers.size(), ")"));
  }
  if (job->attempt->workers[ref.rank()] != worker.worker_id()) {
    return absl::AbortedError(
        absl::StrCat("worker '", worker.worker_id(), "' is not rank ", ref.rank(), " of job '", ref.job_id(), "'"));
  }
  return job;
}

// ---------------------------------------------------------------- the record

void JobManager::Save(JobEntry& job, const JobEvent* event) {
  job.record.mutable_job()->set_num_checkpoints(job.record.checkpoints_size());
  journal_->Append(job.record, event);
}

void JobManager::Snapshot(JobEntry& job) {
  job.record.mutable_job()->set_num_checkpoints(job.record.checkpoints_size());
  job.record.set_generation(job.record.generation() + 1);
  journal_->Snapshot(job.record);
}

void JobManager::AddEvent(JobEntry& job, JobEvent event) {
  event.set_sequence(job.record.events_size() + 1);
  job.record.mutable_job()->set_last_event_sequence(event.sequence());
  event.set_unix_micros(absl::ToUnixMicros(clock_->Now()));
  *job.record.add_events() = event;
  Save(job, &event);
}

void JobManager::SetState(JobEntry& job, JobState state, const std::string& message, int32_t restart) {
  Job& j = *job.record.mutable_job();
  j.set_state(state);
  j.set_message(message);
  if (IsFinalJobState(state)) j.set_finished_unix_seconds(absl::ToUnixSeconds(clock_->Now()));
  JobEvent event;
  event.mutable_state()->set_state(state);
  event.mutable_state()->set_message(message);
  event.mutable_state()->set_attempt(j.attempt());
  event.mutable_state()->set_restart(restart);
  LOG(INFO) << "job " << j.id() << ": " << JobState_Name(state) << (message.empty() ? "" : ": " + message);
  AddEvent(job, std::move(event));
  if (IsFinalJobState(state)) {
    // A job that ended is compacted: its snapshot takes in the log. Its watchers are
    // closed once they have had every event.
    Snapshot(job);
    journal_->Ended(j.id());
  }
}

// ---------------------------------------------------------------- JobService

JobEntry& JobManager::Submit(const JobSpec& spec, const std::string& owner, bool preparing) {
  auto job = std::make_unique<JobEntry>();
  Job& j = *job->record.mutable_job();
  j.set_id(absl::StrCat("job-", next_job_number_++));
  j.set_name(spec.name().empty() ? j.id() : spec.name());
  j.set_owner(owner);
  *j.mutable_spec() = spec;
  j.set_submitted_unix_seconds(absl::ToUnixSeconds(clock_->Now()));
  job->lr = spec.optimizer().lr();
  JobEntry& entry = *job;
  jobs_.push_back(std::move(job));
  Snapshot(entry);  // The job's directory and first snapshot, then its log.
  if (preparing) {
    SetState(entry, PREPARING, "tokenizing its corpus");
    return entry;
  }
  SetState(entry, QUEUED, "");
  Schedule();
  return entry;
}

void JobManager::Prepared(const std::string& job_id, const absl::Status& result) {
  JobEntry* job = Find(job_id);
  if (job == nullptr || job->record.job().state() != PREPARING) return;
  if (!result.ok()) {
    SetState(*job, FAILED, std::string(result.message()));
    return;
  }
  SetState(*job, QUEUED, "");
  Schedule();
}

void JobManager::SetPreparingProgress(const std::string& job_id, const std::string& message) {
  JobEntry* job = Find(job_id);
  if (job != nullptr && job->record.job().state() == PREPARING) job->record.mutable_job()->set_message(message);
}

absl::StatusOr<Job> JobManager::Cancel(const std::string& job_id) {
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJob(job_id));
  const JobState state = job->record.job().state();
  if (IsFinalJobState(state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job '", job_id, "' already finished (", JobState_Name(state), ")"));
  }
  if (state == PREPARING) {
    SetState(*job, CANCELLED, "cancelled while its corpus was being prepared");
  } else if (state == QUEUED) {
    ReleaseReservation(*job);
    SetState(*job, CANCELLED, "cancelled while queued");
    Schedule();
  } else if (job->attempt && !job->attempt->cancel_requested) {
    job->attempt->cancel_requested = true;
    job->record.mutable_job()->set_message("cancelling: waiting for the workers to stop");
    Save(*job);
    CancelRanks(*job);
  }
  return job->record.job();
}

absl::StatusOr<Job> JobManager::Resume(const ResumeJobRequest& request) {
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJob(request.job_id()));
  Job& j = *job->record.mutable_job();
  if (!IsFinalJobState(j.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("job '", j.id(), "' is ", JobState_Name(j.state()), "; only a finished job can be resumed"));
  }
  if (job->record.checkpoints().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("job '", j.id(), "' has no checkpoint to resume from"));
  }
  const CheckpointInfo* from = &job->record.checkpoints(job->record.checkpoints_size() - 1);
  if (!request.checkpoint_id().empty()) {
    from = FindCheckpoint(*job, request.checkpoint_id());
    if (from == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("checkpoint_id '", request.checkpoint_id(), "': job '", j.id(), "' keeps no such checkpoint"));
    }
  }
  if (request.has_num_workers()) {
    if (request.num_workers() < 1) {
      return absl::InvalidArgumentError(absl::StrCat("num_workers must be >= 1, got ", request.num_workers()));
    }
    const int32_t wrote = from->world_size() != 0 ? from->world_size() : j.spec().num_workers();
    if (request.num_workers() != wrote && from->batch() != 0) {
      if (!request.checkpoint_id().empty()) {
        return absl::FailedPreconditionError(absl::StrCat("checkpoint ", from->id(), " is mid-epoch (epoch ",
                                                          from->epoch(), ", batch ", from->batch(), "): a resume on ",
                                                          request.num_workers(), " worker(s) instead of ", wrote,
                                                          " starts from an epoch-end checkpoint (batch 0)"));
      }
      from = LatestEpochEnd(*job);
      if (from == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            "job '", j.id(), "' keeps no epoch-end checkpoint to resume on another number of workers from"));
      }
    }
  }
  if (request.has_epochs()) {
    const int32_t min_epochs = from->batch() > 0 ? from->epoch() : from->epoch() - 1;
    if (request.epochs() < std::max(min_epochs, 1)) {
      return absl::InvalidArgumentError(absl::StrCat("epochs ", request.epochs(),
                                                     " is below the checkpoint's position (epoch ", from->epoch(),
                                                     ", batch ", from->batch(), ")"));
    }
    j.mutable_spec()->mutable_schedule()->set_epochs(request.epochs());
  }
  // Everything checked: only now does the job change.
  if (request.has_num_workers()) {
    j.mutable_spec()->set_num_workers(request.num_workers());
    j.mutable_spec()->set_min_workers(std::min(j.spec().min_workers(), request.num_workers()));
  }
  ResumeFrom(*job, from);
  j.set_restarts(0);  // A person resumed it: the automatic restarts count again.
  SetState(*job, QUEUED, absl::StrCat("resuming from checkpoint ", from->id()));
  Schedule();
  return j;
}

absl::Status JobManager::Erase(const std::string& job_id) {
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindJob(job_id));
  const JobState state = job->record.job().state();
  if (!IsFinalJobState(state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job '", job_id, "' is ", JobState_Name(state), "; cancel it before deleting it"));
  }
  jobs_.erase(std::find_if(jobs_.begin(), jobs_.end(), [&](const auto& j) { return j.get() == job; }));
  return absl::OkStatus();
}

void JobManager::FailNotSaved(const std::string& job_id, const std::string& why) {
  JobEntry* job = Find(job_id);
  if (job == nullptr || IsFinalJobState(job->record.job().state())) return;
  if (job->attempt && !job->attempt->ended) {
    Attempt& a = *job->attempt;
    if (a.failure.empty() && !a.cancel_requested) {
      LOG(ERROR) << "job " << job_id << " attempt " << a.number << " fails: " << why;
      a.failure = why;
      a.not_saved = true;
      CancelRanks(*job);
    }
  } else {
    ReleaseReservation(*job);
    SetState(*job, FAILED, why);
  }
}

// ---------------------------------------------------------------- resuming

void JobManager::ResumeFrom(JobEntry& job, const CheckpointInfo* from) {
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
      if (c.has_val_loss() && c.val_loss() == from->best_val_loss() && c.global_step() <= from->global_step()) {
        job.resume_best = c.id();
      }
    }
  }
  j.set_resumed_from(from->id());
  j.set_global_step(from->global_step());
}

void JobManager::RestartOrFail(JobEntry& job, const std::string& why) {
  Job& j = *job.record.mutable_job();
  const int32_t allowed = j.spec().max_restarts();
  if (j.restarts() >= allowed) {
    SetState(job, FAILED,
             allowed == 0 ? why
                          : absl::StrCat(why, " (after ", j.restarts(), " automatic restart(s); spec.max_restarts is ",
                                         allowed, ")"));
    return;
  }
  j.set_restarts(j.restarts() + 1);
  // The latest kept checkpoint: with the same number of workers, training goes on
  // exactly as if the attempt had never failed.
  const CheckpointInfo* from =
      job.record.checkpoints().empty() ? nullptr : &job.record.checkpoints(job.record.checkpoints_size() - 1);
  ResumeFrom(job, from);
  SetState(job, QUEUED,
           absl::StrCat("restart ", j.restarts(), " of ", allowed, ": attempt ", j.attempt(), " failed (", why, "); ",
                        from == nullptr ? "starting over (no checkpoint kept yet)"
                                        : absl::StrCat("resuming from checkpoint ", from->id())),
           j.restarts());
}

const CheckpointInfo* JobManager::FindCheckpoint(const JobEntry& job, const std::string& id) {
  for (const CheckpointInfo& c : job.record.checkpoints()) {
    if (c.id() == id) return &c;
  }
  return nullptr;
}

const CheckpointInfo* JobManager::LatestEpochEnd(const JobEntry& job) {
  const CheckpointInfo* latest = nullptr;
  for (const CheckpointInfo& c : job.record.checkpoints()) {
    if (c.batch() == 0) latest = &c;
  }
  return latest;
}

void JobManager::ReshardIfNeeded(JobEntry& job) {
  const int world = job.record.job().spec().num_workers();
  const CheckpointInfo* from = FindCheckpoint(job, job.resume_checkpoint);
  if (from == nullptr || from->world_size() == 0 || from->world_size() == world) return;
  const int32_t wrote = from->world_size();
  // Written by another number of workers: each rank's recurrent state and data slice
  // belong to that sharding, so the job goes on from an epoch end, resharded.
  if (from->batch() != 0) {
    from = LatestEpochEnd(job);
    ResumeFrom(job, from);
  }
  absl::StrAppend(&job.reshard_note, "; resharded from ",
                  from == nullptr ? "the start" : absl::StrCat("epoch-end checkpoint ", from->id()), " (written by ",
                  wrote, " worker(s)): from here on the run is not bit-identical to an uninterrupted one");
}

// ---------------------------------------------------------------- scheduling

void JobManager::Schedule() {
  std::vector<QueuedJob> queue;
  std::vector<JobEntry*> queued;
  for (auto& job : jobs_) {
    const Job& j = job->record.job();
    if (j.state() != QUEUED || job->starting) continue;
    // A restarted job that can no longer get num_workers (fewer are alive) may go on
    // with fewer, down to spec.min_workers.
    const bool fewer = j.restarts() > 0 && j.spec().min_workers() < j.spec().num_workers() &&
                       workers_->live_count() < j.spec().num_workers();
    queue.push_back({j.id(), j.spec().num_workers(), fewer ? j.spec().min_workers() : j.spec().num_workers()});
    queued.push_back(job.get());
  }
  if (queue.empty()) return;
  std::vector<FreeWorker> free;
  for (const WorkerEntry* w : workers_->Idle()) free.push_back({w->info.worker_id(), w->info.device()});
  const SchedulePlan plan = PlanSchedule(queue, free, workers_->live_count());
  for (const Placement& p : plan.start) {
    // Ranks in worker-id order: a job started again on the same workers (a restart, a
    // resume, a coordinator that restarted) gives each the rank, and so the shard, it
    // had, which it keeps on its disk (worker/shard_store.h) and need not download.
    std::vector<std::string> ids = p.workers;
    std::sort(ids.begin(), ids.end());
    std::vector<WorkerEntry*> chosen;
    for (const std::string& id : ids) chosen.push_back(workers_->Get(id));
    Reserve(*Find(p.job_id), chosen);
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
      Save(*job);
    }
  }
}

void JobManager::Reserve(JobEntry& job, const std::vector<WorkerEntry*>& workers) {
  Job& j = *job.record.mutable_job();
  const int world = static_cast<int>(workers.size());
  if (world != j.spec().num_workers()) {
    // Fewer workers than before (spec.min_workers): num_workers becomes what there is.
    job.reshard_note = absl::StrCat("; on ", world, " worker(s) instead of ", j.spec().num_workers(),
                                    " (fewer are left; spec.min_workers ", j.spec().min_workers(), ")");
    j.mutable_spec()->set_num_workers(world);
    j.mutable_spec()->set_min_workers(std::min(j.spec().min_workers(), world));
  }
  ReshardIfNeeded(job);
  AttemptStart start;
  start.reservation = next_reservation_++;
  start.number = j.attempt() + 1;
  for (size_t r = 0; r < workers.size(); ++r) {
    start.workers.push_back(workers[r]->info.worker_id());
    workers_->Reserve(*workers[r], j.id(), start.number, static_cast<int32_t>(r));
  }
  job.starting = std::move(start);
  j.set_message(absl::StrCat("starting on ", workers.size(), " worker(s): preparing the shards"));
  Save(job);
  pending_starts_.push_back(j.id());
}

void JobManager::ReleaseReservation(JobEntry& job) {
  if (!job.starting) return;
  for (const std::string& id : job.starting->workers) {
    workers_->Release(id, job.record.job().id(), job.starting->number);
  }
  job.starting.reset();
}

std::optional<PendingStart> JobManager::TakePendingStart() {
  while (!pending_starts_.empty()) {
    const std::string job_id = std::move(pending_starts_.front());
    pending_starts_.pop_front();
    JobEntry* job = Find(job_id);
    // Cancelled meanwhile, or already taken (a job reserved again is queued again).
    if (job == nullptr || !job->starting || job->starting->taken) continue;
    job->starting->taken = true;
    PendingStart start;
    start.job_id = job_id;
    start.reservation = job->starting->reservation;
    start.number = job->starting->number;
    start.world = static_cast<int>(job->starting->workers.size());
    start.spec = job->record.job().spec();
    return start;
  }
  return std::nullopt;
}

void JobManager::FinishStart(const PendingStart& pending, absl::StatusOr<PreparedAttempt> prepared) {
  JobEntry* found = Find(pending.job_id);
  if (found == nullptr || !found->starting || found->starting->reservation != pending.reservation) return;
  JobEntry& job = *found;
  Job& j = *job.record.mutable_job();
  if (!prepared.ok()) {
    ReleaseReservation(job);
    SetState(job, FAILED, std::string(prepared.status().message()));
    Schedule();
    return;
  }
  const AttemptStart start = *job.starting;
  const int world = static_cast<int>(start.workers.size());
  for (const std::string& id : start.workers) {
    if (workers_->Holding(id, j.id(), start.number) == nullptr) {
      // A reserved worker is gone (WorkerLost releases the reservation at once; this
      // is the same check at the last moment): back to the queue.
      ReleaseReservation(job);
      Schedule();
      return;
    }
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
    const std::string& id = start.workers[r];
    j.add_workers(id);
    attempt.workers.push_back(id);
    WorkerCommand& command = prepared->commands[r];
    Assignment& a = *command.mutable_assign();
    a.mutable_attempt()->set_job_id(j.id());
    a.mutable_attempt()->set_attempt(attempt.number);
    a.set_resume_checkpoint_id(job.resume_checkpoint);
    a.set_best_checkpoint_id(job.resume_best);
    a.set_store_prefix(prefix);
    workers_->Send(id, std::move(command));
  }
  job.starting.reset();
  job.attempt = std::move(attempt);
  std::string note = std::move(job.reshard_note);
  job.reshard_note.clear();
  SetState(
      job, RUNNING,
      absl::StrCat("attempt ", j.attempt(), " on ", world, " worker(s)",
                   job.resume_checkpoint.empty() ? "" : absl::StrCat(", resuming from ", job.resume_checkpoint), note));
  Schedule();
}

// ---------------------------------------------------------------- attempts

void JobManager::CancelRanks(JobEntry& job) {
  Attempt& a = *job.attempt;
  for (size_t r = 0; r < a.workers.size(); ++r) {
    if (a.finished[r]) continue;
    if (workers_->Holding(a.workers[r], job.record.job().id(), a.number) == nullptr) continue;
    WorkerCommand command;
    command.mutable_cancel()->set_job_id(job.record.job().id());
    command.mutable_cancel()->set_attempt(a.number);
    command.mutable_cancel()->set_rank(static_cast<int32_t>(r));
    workers_->Send(a.workers[r], std::move(command));
  }
}

void JobManager::RankStopped(JobEntry& job, int rank, const std::string& failure) {
  Attempt& a = *job.attempt;
  if (rank < 0 || rank >= static_cast<int>(a.finished.size()) || a.finished[rank]) return;
  a.finished[rank] = true;
  workers_->Release(a.workers[rank], job.record.job().id(), a.number);
  if (!failure.empty() && a.failure.empty() && !a.cancel_requested) {
    a.failure = failure;
    LOG(WARNING) << "job " << job.record.job().id() << " attempt " << a.number << " fails: " << failure;
    CancelRanks(job);
  }
  if (std::all_of(a.finished.begin(), a.finished.end(), [](bool f) { return f; })) {
    EndAttempt(job);
  }
}

void JobManager::EndAttempt(JobEntry& job) {
  Attempt& a = *job.attempt;
  a.ended = true;
  rendezvous_->EndAttempt(Rendezvous::AttemptPrefix(job.record.job().id(), a.number));
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
  if (failed && !not_saved) {
    RestartOrFail(job, message);
  } else {
    SetState(job, state, message);
  }
  Schedule();
}

void JobManager::WorkerLost(const WorkerEntry& worker, const std::string& why) {
  if (worker.info.state() != BUSY) return;
  JobEntry* job = Find(worker.info.job_id());
  if (job != nullptr && job->starting && job->starting->number == worker.attempt) {
    // Reserved for a job whose shards are being prepared: the job goes back to the
    // queue (nothing ran yet), and the other reserved workers are free again.
    LOG(INFO) << "job " << job->record.job().id() << ": " << why << " before the attempt started";
    ReleaseReservation(*job);
    return;
  }
  if (job == nullptr || !job->attempt || job->attempt->number != worker.attempt) return;
  RankStopped(*job, worker.info.rank(), why);
}

absl::Status JobManager::FinishAssignment(const FinishAssignmentRequest& request) {
  DDLM_RETURN_IF_ERROR(workers_->Find(request.worker()).status());
  const AttemptRef& ref = request.attempt();
  JobEntry* job = Find(ref.job_id());
  if (job == nullptr || !job->attempt || job->attempt->number != ref.attempt()) {
    // A stale attempt (already ended): just free the worker.
    if (workers_->Release(request.worker().worker_id(), ref.job_id(), ref.attempt())) Schedule();
    return absl::OkStatus();
  }
  DDLM_RETURN_IF_ERROR(FindAttempt(request.worker(), ref).status());
  std::string failure;
  if (!request.ok() && !request.cancelled()) {
    failure =
        absl::StrCat("rank ", ref.rank(), " (worker '", request.worker().worker_id(), "') failed: ", request.error());
  }
  RankStopped(*job, ref.rank(), failure);
  Schedule();
  return absl::OkStatus();
}

absl::Status JobManager::ReportMetrics(const ReportMetricsRequest& request) {
  DDLM_ASSIGN_OR_RETURN(JobEntry * job, FindAttempt(request.worker(), request.attempt()));
  DDLM_ASSIGN_OR_RETURN(std::optional<TrainingMetrics> combined,
                        job->attempt->rounds.ReportMetrics(request.attempt().rank(), request.metrics()));
  if (!combined) return absl::OkStatus();  // Not every rank yet.
  Job& j = *job->record.mutable_job();
  *j.mutable_last_training() = *combined;
  j.set_epoch(combined->epoch());
  j.set_global_step(std::max(j.global_step(), request.global_step()));
  JobEvent event;
  *event.mutable_training() = *combined;
  AddEvent(*job, std::move(event));
  return absl::OkStatus();
}

absl::Status JobManager::RecordEvaluation(JobEntry& job, const ReportEvaluationRequest& request) {
  Attempt& a = *job.attempt;
  const Split split = request.split();
  const int32_t epoch = request.epoch();
  if (!a.rounds.Decision(split, epoch) && (a.cancel_requested || !a.failure.empty())) {
    // Every rank of an undecided round gets the same answer, so none goes on to a
    // collective that the others have left.
    return absl::AbortedError(
        absl::StrCat("job '", request.attempt().job_id(), "' attempt ", a.number, " was cancelled or failed"));
  }
  DDLM_ASSIGN_OR_RETURN(std::optional<AttemptRounds::Evaluation> done,
                        a.rounds.ReportEvaluation(request.attempt().rank(), split, epoch, request.loss_sum(),
                                                  request.tokens(), request.seconds()));
  if (!done) return absl::OkStatus();
  // This report completed the round: decide it, once.
  EvaluationDecision decision;
  decision.set_loss(done->loss);
  decision.set_tokens(done->tokens);
  JobEvent event;
  Job& j = *job.record.mutable_job();
  if (split == VALID) {
    const ValidationOutcome outcome =
        DecideAfterValidation(done->loss, job.best_val_loss, job.lr, j.spec().optimizer().anneal_factor());
    job.lr = outcome.lr;
    if (outcome.best) {
      job.best_val_loss = done->loss;
      j.set_best_val_ppl(std::exp(done->loss));
    }
    decision.set_best(outcome.best);
    decision.set_lr(job.lr);
    EpochResult& e = *event.mutable_epoch();
    e.set_epoch(epoch);
    e.set_val_loss(done->loss);
    e.set_val_ppl(std::exp(done->loss));
    e.set_val_tokens(done->tokens);
    e.set_lr(job.lr);
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
  AddEvent(job, std::move(event));
  return absl::OkStatus();
}

std::vector<std::string> JobManager::KeepCheckpoint(JobEntry& job, const CheckpointInfo& info) {
  std::vector<std::string> doomed =
      AddToKept(job.record.mutable_checkpoints(), info, job.record.job().spec().checkpoint().keep_last());
  JobEvent event;
  *event.mutable_checkpoint() = info;
  AddEvent(job, std::move(event));
  return doomed;
}

}  // namespace ddlm
