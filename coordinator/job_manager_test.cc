#include "coordinator/job_manager.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/base/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records what the JobManager queued for the disk and for watchers.
class RecordingJournal : public JobJournal {
 public:
  void Append(const JobRecord& record, const JobEvent* event) override {
    ++appends;
    if (event != nullptr) events.push_back(*event);
    last = record;
  }
  void Snapshot(const JobRecord& record) override {
    ++snapshots;
    last = record;
  }
  void Ended(const std::string& job_id) override { ended.push_back(job_id); }

  // The states the job's events went through, in order.
  std::vector<JobState> States() const {
    std::vector<JobState> out;
    for (const JobEvent& e : events) {
      if (e.has_state()) out.push_back(e.state().state());
    }
    return out;
  }

  int appends = 0;
  int snapshots = 0;
  std::vector<JobEvent> events;
  std::vector<std::string> ended;
  JobRecord last;
};

WorkerRef Ref(const std::string& id) {
  WorkerRef ref;
  ref.set_worker_id(id);
  ref.set_incarnation(7);
  return ref;
}

AttemptRef Attempt(const std::string& job_id, int32_t number, int32_t rank) {
  AttemptRef ref;
  ref.set_job_id(job_id);
  ref.set_attempt(number);
  ref.set_rank(rank);
  return ref;
}

JobSpec Spec(int workers) {
  JobSpec spec;
  spec.set_num_workers(workers);
  spec.mutable_data()->set_path("corpus");
  ApplyDefaults(&spec);
  return spec;
}

// What attempt preparation would make, less the shards' bytes.
PreparedAttempt Prepared(int world) {
  PreparedAttempt prepared;
  prepared.shards.resize(world);
  for (int r = 0; r < world; ++r) {
    WorkerCommand& command = prepared.commands.emplace_back();
    command.mutable_assign()->set_world_size(world);
    command.mutable_assign()->mutable_attempt()->set_rank(r);
  }
  prepared.max_checkpoint_bytes = 1 << 20;
  prepared.vocabulary_size = 10;
  return prepared;
}

class JobManagerTest : public ::testing::Test {
 protected:
  void AddWorker(const std::string& id, const std::string& device = "cpu") {
    ASSERT_TRUE(workers_.Register(Ref(id), "host", device, clock_.Now()).ok());
    jobs_.Schedule();
  }
  // Takes the pending start and finishes it as preparation would.
  void Start(absl::StatusOr<PreparedAttempt> prepared) {
    std::optional<PendingStart> start = jobs_.TakePendingStart();
    ASSERT_TRUE(start.has_value());
    jobs_.FinishStart(*start, std::move(prepared));
  }
  // The commands waiting in the worker's outbox (none is streamed here).
  std::vector<WorkerCommand> Outbox(const std::string& id) {
    WorkerEntry* w = workers_.Get(id);
    return std::vector<WorkerCommand>(w->outbox.begin(), w->outbox.end());
  }
  const Job& JobOf(const std::string& id) { return jobs_.Find(id)->record.job(); }
  FinishAssignmentRequest Finish(const std::string& worker, const std::string& job_id, int32_t number, int32_t rank,
                                 bool ok) {
    FinishAssignmentRequest request;
    *request.mutable_worker() = Ref(worker);
    *request.mutable_attempt() = Attempt(job_id, number, rank);
    request.set_ok(ok);
    if (!ok) request.set_error("out of memory");
    return request;
  }
  // The rank's finish after it was told to cancel.
  FinishAssignmentRequest Cancelled(const std::string& worker, const std::string& job_id, int32_t number) {
    FinishAssignmentRequest request = Finish(worker, job_id, number, 0, /*ok=*/false);
    request.set_cancelled(true);
    return request;
  }
  ReportEvaluationRequest Evaluation(const std::string& worker, const std::string& job_id, int32_t rank, int32_t epoch,
                                     double loss_sum, int64_t tokens) {
    ReportEvaluationRequest request;
    *request.mutable_worker() = Ref(worker);
    *request.mutable_attempt() = Attempt(job_id, 1, rank);
    request.set_split(VALID);
    request.set_epoch(epoch);
    request.set_loss_sum(loss_sum);
    request.set_tokens(tokens);
    return request;
  }

  FakeClock clock_;
  WorkerRegistry workers_{absl::Seconds(10)};
  Rendezvous rendezvous_;
  RecordingJournal journal_;
  JobManager jobs_{&clock_, &workers_, &rendezvous_, &journal_};
};

TEST_F(JobManagerTest, ASubmittedJobWaitsQueuedForWorkers) {
  JobEntry& job = jobs_.Submit(Spec(2), "alice");
  EXPECT_EQ(job.record.job().id(), "job-1");
  EXPECT_EQ(job.record.job().owner(), "alice");
  EXPECT_EQ(job.record.job().state(), QUEUED);
  EXPECT_THAT(journal_.States(), ElementsAre(QUEUED));
  EXPECT_EQ(journal_.snapshots, 1);  // Its first snapshot, before its log.
  EXPECT_FALSE(jobs_.TakePendingStart().has_value());
  EXPECT_EQ(jobs_.Submit(Spec(1), "").record.job().id(), "job-2");
}

TEST_F(JobManagerTest, APreparingJobIsQueuedOnceItsCorpusIsReadyOrFailsNamingWhy) {
  AddWorker("w0");
  const std::string id = jobs_.Submit(Spec(1), "", /*preparing=*/true).record.job().id();
  EXPECT_EQ(JobOf(id).state(), PREPARING);
  EXPECT_EQ(workers_.Get("w0")->info.state(), IDLE);  // Not reserved while preparing.
  jobs_.SetPreparingProgress(id, "tokenizing its corpus: pass 2 of 2");
  EXPECT_EQ(JobOf(id).message(), "tokenizing its corpus: pass 2 of 2");
  jobs_.Prepared(id, absl::OkStatus());
  EXPECT_EQ(JobOf(id).state(), QUEUED);
  EXPECT_EQ(workers_.Get("w0")->info.state(), BUSY);  // Scheduled at once.
  jobs_.SetPreparingProgress(id, "late");             // No longer preparing: ignored.
  EXPECT_NE(JobOf(id).message(), "late");

  const std::string bad = jobs_.Submit(Spec(1), "", /*preparing=*/true).record.job().id();
  jobs_.Prepared(bad, absl::FailedPreconditionError("data.path 'x': train.txt has 3 tokens, too few"));
  EXPECT_EQ(JobOf(bad).state(), FAILED);
  EXPECT_EQ(JobOf(bad).message(), "data.path 'x': train.txt has 3 tokens, too few");

  const std::string cancelled = jobs_.Submit(Spec(1), "", /*preparing=*/true).record.job().id();
  ASSERT_TRUE(jobs_.Cancel(cancelled).ok());
  EXPECT_EQ(JobOf(cancelled).state(), CANCELLED);
  jobs_.Prepared(cancelled, absl::OkStatus());  // Its tokenizing ended after the cancel.
  EXPECT_EQ(JobOf(cancelled).state(), CANCELLED);
  EXPECT_THAT(journal_.States(), ElementsAre(PREPARING, QUEUED, PREPARING, FAILED, PREPARING, CANCELLED));
}

TEST_F(JobManagerTest, RanksGoToTheChosenWorkersInIdOrderSoThatAStartAgainKeepsEachWorkersShard) {
  AddWorker("w9");  // Registered first...
  AddWorker("w1");
  const std::string id = jobs_.Submit(Spec(2), "").record.job().id();
  EXPECT_EQ(workers_.Get("w1")->info.rank(), 0);  // ...but ranks follow the ids.
  EXPECT_EQ(workers_.Get("w9")->info.rank(), 1);
  EXPECT_EQ(JobOf(id).state(), QUEUED);
}

TEST_F(JobManagerTest, ReservedWorkersGetTheirRanksWhenTheStartFinishes) {
  AddWorker("w0");
  AddWorker("w1");
  const std::string id = jobs_.Submit(Spec(2), "").record.job().id();
  // Reserved at once: BUSY, the job still QUEUED while its shards are prepared.
  EXPECT_EQ(workers_.Get("w0")->info.state(), BUSY);
  EXPECT_EQ(workers_.Get("w1")->info.rank(), 1);
  EXPECT_EQ(JobOf(id).state(), QUEUED);
  EXPECT_THAT(JobOf(id).message(), HasSubstr("preparing the shards"));

  std::optional<PendingStart> start = jobs_.TakePendingStart();
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(start->job_id, id);
  EXPECT_EQ(start->number, 1);
  EXPECT_EQ(start->world, 2);
  jobs_.FinishStart(*start, Prepared(2));

  EXPECT_EQ(JobOf(id).state(), RUNNING);
  EXPECT_EQ(JobOf(id).attempt(), 1);
  EXPECT_THAT(JobOf(id).workers(), ElementsAre("w0", "w1"));
  for (int r = 0; r < 2; ++r) {
    std::vector<WorkerCommand> commands = Outbox(absl::StrCat("w", r));
    ASSERT_EQ(commands.size(), 1u);
    const Assignment& a = commands[0].assign();
    EXPECT_EQ(a.attempt().job_id(), id);
    EXPECT_EQ(a.attempt().attempt(), 1);
    EXPECT_EQ(a.attempt().rank(), r);
    EXPECT_EQ(a.store_prefix(), Rendezvous::AttemptPrefix(id, 1));
  }
}

TEST_F(JobManagerTest, AReservedWorkerLostBeforeTheStartSendsTheJobBackToTheQueue) {
  AddWorker("w0");
  AddWorker("w1");
  const std::string id = jobs_.Submit(Spec(2), "").record.job().id();
  std::optional<PendingStart> start = jobs_.TakePendingStart();
  ASSERT_TRUE(start.has_value());
  const WorkerEntry lost = *workers_.Get("w1");
  workers_.MarkDead("w1", clock_.Now());
  jobs_.WorkerLost(lost, "worker 'w1' left");
  EXPECT_EQ(workers_.Get("w0")->info.state(), IDLE);  // The reservation is given up at once.
  jobs_.FinishStart(*start, Prepared(2));             // Too late: nothing happens.
  EXPECT_EQ(JobOf(id).state(), QUEUED);
  EXPECT_EQ(JobOf(id).attempt(), 0);
  EXPECT_TRUE(Outbox("w0").empty());
  EXPECT_THAT(journal_.States(), ElementsAre(QUEUED));
}

TEST_F(JobManagerTest, AFailedPreparationFailsTheJobAndFreesItsWorkers) {
  AddWorker("w0");
  const std::string id = jobs_.Submit(Spec(1), "").record.job().id();
  Start(absl::FailedPreconditionError("corpus/train.txt: no such file"));
  EXPECT_EQ(JobOf(id).state(), FAILED);
  EXPECT_THAT(JobOf(id).message(), HasSubstr("train.txt"));
  EXPECT_EQ(workers_.Get("w0")->info.state(), IDLE);
  EXPECT_THAT(journal_.ended, ElementsAre(id));  // Its watchers are closed.
}

TEST_F(JobManagerTest, ARankThatFailsCancelsTheOthersAndTheJobRestartsFromItsLatestCheckpoint) {
  AddWorker("w0");
  AddWorker("w1");
  const std::string id = jobs_.Submit(Spec(2), "").record.job().id();
  Start(Prepared(2));
  CheckpointInfo ckpt;
  ckpt.set_id("epoch1");
  ckpt.set_epoch(1);
  ckpt.set_lr(5);
  ckpt.set_global_step(100);
  ckpt.set_world_size(2);
  EXPECT_TRUE(jobs_.KeepCheckpoint(*jobs_.Find(id), ckpt).empty());

  ASSERT_TRUE(jobs_.FinishAssignment(Finish("w0", id, 1, 0, /*ok=*/false)).ok());
  EXPECT_EQ(workers_.Get("w0")->info.state(), IDLE);
  std::vector<WorkerCommand> w1 = Outbox("w1");
  ASSERT_EQ(w1.size(), 2u);  // Its assignment, then the cancel.
  EXPECT_EQ(w1[1].cancel().rank(), 1);
  EXPECT_EQ(JobOf(id).state(), RUNNING);  // Until every rank has stopped.

  ASSERT_TRUE(jobs_.FinishAssignment(Finish("w1", id, 1, 1, /*ok=*/true)).ok());
  // Both workers are free again, so the restart is reserved at once.
  EXPECT_EQ(JobOf(id).state(), QUEUED);
  EXPECT_EQ(JobOf(id).restarts(), 1);
  EXPECT_EQ(JobOf(id).resumed_from(), "epoch1");
  EXPECT_EQ(JobOf(id).global_step(), 100);
  EXPECT_THAT(journal_.events.back().state().message(), HasSubstr("out of memory"));
  EXPECT_EQ(journal_.events.back().state().restart(), 1);
  std::optional<PendingStart> next = jobs_.TakePendingStart();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->number, 2);
  jobs_.FinishStart(*next, Prepared(2));
  EXPECT_EQ(Outbox("w0").back().assign().resume_checkpoint_id(), "epoch1");
  EXPECT_DOUBLE_EQ(jobs_.Find(id)->lr, 5);
}

TEST_F(JobManagerTest, ALateFinishOfAnEndedAttemptFreesOnlyAWorkerStillHoldingIt) {
  AddWorker("w0");
  JobSpec spec = Spec(1);
  spec.set_max_restarts(0);
  const std::string id = jobs_.Submit(spec, "").record.job().id();
  Start(Prepared(1));
  ASSERT_TRUE(jobs_.Cancel(id).ok());
  ASSERT_TRUE(jobs_.FinishAssignment(Finish("w0", id, 1, 0, true)).ok());
  EXPECT_EQ(JobOf(id).state(), CANCELLED);
  EXPECT_EQ(workers_.Get("w0")->info.state(), IDLE);
  // Another job now holds w0 as rank 0 of its attempt 1; a repeated finish of the
  // cancelled job's attempt 1 must not free it.
  const std::string other = jobs_.Submit(Spec(1), "").record.job().id();
  Start(Prepared(1));
  ASSERT_TRUE(jobs_.FinishAssignment(Finish("w0", id, 1, 0, true)).ok());
  EXPECT_EQ(workers_.Get("w0")->info.state(), BUSY);
  EXPECT_EQ(workers_.Get("w0")->info.job_id(), other);
}

TEST_F(JobManagerTest, TheValidationRoundIsDecidedOnceEveryRankReported) {
  AddWorker("w0");
  AddWorker("w1");
  JobSpec spec = Spec(2);
  spec.mutable_optimizer()->set_lr(20);
  spec.mutable_optimizer()->set_anneal_factor(4);
  const std::string id = jobs_.Submit(spec, "").record.job().id();
  Start(Prepared(2));
  JobEntry& job = *jobs_.Find(id);
  ASSERT_TRUE(jobs_.RecordEvaluation(job, Evaluation("w0", id, 0, 1, 30.0, 10)).ok());
  EXPECT_FALSE(job.attempt->rounds.Decision(VALID, 1).has_value());
  ASSERT_TRUE(jobs_.RecordEvaluation(job, Evaluation("w1", id, 1, 1, 10.0, 10)).ok());
  std::optional<EvaluationDecision> first = job.attempt->rounds.Decision(VALID, 1);
  ASSERT_TRUE(first.has_value());
  EXPECT_DOUBLE_EQ(first->loss(), 2.0);  // (30 + 10) / (10 + 10): exact over ranks.
  EXPECT_TRUE(first->best());
  EXPECT_DOUBLE_EQ(first->lr(), 20);
  EXPECT_DOUBLE_EQ(JobOf(id).best_val_ppl(), std::exp(2.0));

  // Worse: not best, and the learning rate is annealed.
  ASSERT_TRUE(jobs_.RecordEvaluation(job, Evaluation("w0", id, 0, 2, 25.0, 10)).ok());
  ASSERT_TRUE(jobs_.RecordEvaluation(job, Evaluation("w1", id, 1, 2, 25.0, 10)).ok());
  std::optional<EvaluationDecision> second = job.attempt->rounds.Decision(VALID, 2);
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(second->best());
  EXPECT_DOUBLE_EQ(second->lr(), 5);
  EXPECT_DOUBLE_EQ(job.lr, 5);
  int epoch_events = 0;
  for (const JobEvent& e : journal_.events) epoch_events += e.has_epoch();
  EXPECT_EQ(epoch_events, 2);
}

TEST_F(JobManagerTest, AnUndecidedRoundOfACancelledAttemptIsAborted) {
  AddWorker("w0");
  AddWorker("w1");
  const std::string id = jobs_.Submit(Spec(2), "").record.job().id();
  Start(Prepared(2));
  ASSERT_TRUE(jobs_.RecordEvaluation(*jobs_.Find(id), Evaluation("w0", id, 0, 1, 3.0, 1)).ok());
  ASSERT_TRUE(jobs_.Cancel(id).ok());
  EXPECT_EQ(jobs_.RecordEvaluation(*jobs_.Find(id), Evaluation("w1", id, 1, 1, 3.0, 1)).code(),
            absl::StatusCode::kAborted);
}

TEST_F(JobManagerTest, FindAttemptNamesWhatIsWrongWithAWorkersCall) {
  AddWorker("w0");
  const std::string id = jobs_.Submit(Spec(1), "").record.job().id();
  Start(Prepared(1));
  EXPECT_TRUE(jobs_.FindAttempt(Ref("w0"), Attempt(id, 1, 0)).ok());
  EXPECT_EQ(jobs_.FindAttempt(Ref("w0"), Attempt(id, 2, 0)).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(jobs_.FindAttempt(Ref("w0"), Attempt(id, 1, 1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(jobs_.FindAttempt(Ref("w9"), Attempt(id, 1, 0)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(jobs_.FindAttempt(Ref("w0"), Attempt("job-9", 1, 0)).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobManagerTest, ResumeChecksEverythingBeforeChangingTheJob) {
  AddWorker("w0");
  const std::string id = jobs_.Submit(Spec(1), "").record.job().id();
  Start(Prepared(1));
  ResumeJobRequest request;
  request.set_job_id(id);
  EXPECT_EQ(jobs_.Resume(request).status().code(), absl::StatusCode::kFailedPrecondition);  // Running.
  CheckpointInfo ckpt;
  ckpt.set_id("mid");
  ckpt.set_epoch(2);
  ckpt.set_batch(50);
  ckpt.set_world_size(1);
  jobs_.KeepCheckpoint(*jobs_.Find(id), ckpt);
  ASSERT_TRUE(jobs_.Cancel(id).ok());
  ASSERT_TRUE(jobs_.FinishAssignment(Finish("w0", id, 1, 0, true)).ok());
  ASSERT_EQ(JobOf(id).state(), CANCELLED);

  request.set_num_workers(2);
  request.set_checkpoint_id("mid");  // Mid-epoch, on another number of workers.
  EXPECT_EQ(jobs_.Resume(request).status().code(), absl::StatusCode::kFailedPrecondition);
  request.clear_num_workers();
  request.set_epochs(1);  // Below the checkpoint's position.
  EXPECT_EQ(jobs_.Resume(request).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(JobOf(id).state(), CANCELLED);  // Unchanged by the refused calls.
  EXPECT_EQ(JobOf(id).spec().schedule().epochs(), Spec(1).schedule().epochs());

  request.set_epochs(3);
  ASSERT_TRUE(jobs_.Resume(request).ok());
  EXPECT_EQ(JobOf(id).resumed_from(), "mid");
  EXPECT_EQ(JobOf(id).spec().schedule().epochs(), 3);
  EXPECT_EQ(workers_.Get("w0")->info.state(), BUSY);  // Scheduled at once.
}

TEST_F(JobManagerTest, ALoadedRunningJobIsRestartedAndAFinishedOneCannotBeErasedWhileRunning) {
  JobRecord record;
  Job& j = *record.mutable_job();
  j.set_id("job-41");
  *j.mutable_spec() = Spec(1);
  j.set_state(RUNNING);
  j.set_attempt(3);
  jobs_.Load(record);
  EXPECT_EQ(JobOf("job-41").state(), QUEUED);
  EXPECT_THAT(JobOf("job-41").message(), HasSubstr("the coordinator restarted during attempt 3"));
  EXPECT_EQ(jobs_.Submit(Spec(1), "").record.job().id(), "job-42");
  EXPECT_EQ(jobs_.Erase("job-41").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(jobs_.Cancel("job-41").ok());
  EXPECT_TRUE(jobs_.Erase("job-41").ok());
  EXPECT_EQ(jobs_.Find("job-41"), nullptr);
}

TEST_F(JobManagerTest, CancelQueuedAndRunningJobs) {
  const std::string queued = jobs_.Submit(Spec(3), "").record.job().id();
  ASSERT_TRUE(jobs_.Cancel(queued).ok());
  EXPECT_EQ(JobOf(queued).state(), CANCELLED);
  EXPECT_EQ(jobs_.Cancel(queued).status().code(), absl::StatusCode::kFailedPrecondition);

  AddWorker("w0");
  const std::string id = jobs_.Submit(Spec(1), "").record.job().id();
  Start(Prepared(1));
  absl::StatusOr<Job> cancelling = jobs_.Cancel(id);
  ASSERT_TRUE(cancelling.ok()) << cancelling.status();
  EXPECT_EQ(cancelling->state(), RUNNING);  // Until its rank has stopped.
  ASSERT_FALSE(Outbox("w0").empty());
  EXPECT_TRUE(Outbox("w0").back().has_cancel());
  ASSERT_TRUE(jobs_.FinishAssignment(Cancelled("w0", id, 1)).ok());
  EXPECT_EQ(JobOf(id).state(), CANCELLED);
  EXPECT_EQ(workers_.Get("w0")->info.state(), IDLE);
  ResumeJobRequest resume;  // No checkpoint: nothing to resume from.
  resume.set_job_id(id);
  EXPECT_EQ(jobs_.Resume(resume).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(JobManagerTest, ACancelIsNeverRestartedAndAJobWithoutCheckpointsStartsOver) {
  AddWorker("w0");
  JobSpec spec = Spec(1);
  spec.set_max_restarts(3);
  const std::string id = jobs_.Submit(spec, "").record.job().id();
  Start(Prepared(1));
  ASSERT_TRUE(jobs_.FinishAssignment(Finish("w0", id, 1, 0, /*ok=*/false)).ok());
  EXPECT_THAT(journal_.events.back().state().message(), HasSubstr("starting over (no checkpoint kept yet)"));
  Start(Prepared(1));  // w0 was free again: reserved at once.
  EXPECT_EQ(JobOf(id).state(), RUNNING);
  EXPECT_EQ(JobOf(id).attempt(), 2);
  EXPECT_EQ(Outbox("w0").back().assign().resume_checkpoint_id(), "");

  ASSERT_TRUE(jobs_.Cancel(id).ok());
  ASSERT_TRUE(jobs_.FinishAssignment(Cancelled("w0", id, 2)).ok());
  EXPECT_EQ(JobOf(id).state(), CANCELLED);
  EXPECT_EQ(JobOf(id).restarts(), 1);
  EXPECT_FALSE(jobs_.HasPendingStart());
}

TEST_F(JobManagerTest, ResumeOnAnotherNumberOfWorkersStartsFromTheLatestEpochEnd) {
  AddWorker("w0");
  JobSpec spec = Spec(1);
  spec.mutable_checkpoint()->set_keep_last(3);
  const std::string id = jobs_.Submit(spec, "").record.job().id();
  Start(Prepared(1));
  for (auto [name, batch] : {std::pair<const char*, int64_t>{"end2", 0}, {"mid2", 5}}) {
    CheckpointInfo ckpt;
    ckpt.set_id(name);
    ckpt.set_epoch(2);
    ckpt.set_batch(batch);
    ckpt.set_world_size(1);
    jobs_.KeepCheckpoint(*jobs_.Find(id), ckpt);
  }
  ASSERT_TRUE(jobs_.Cancel(id).ok());
  ASSERT_TRUE(jobs_.FinishAssignment(Cancelled("w0", id, 1)).ok());

  ResumeJobRequest resume;
  resume.set_job_id(id);
  resume.set_num_workers(0);
  EXPECT_EQ(jobs_.Resume(resume).status().code(), absl::StatusCode::kInvalidArgument);
  resume.set_num_workers(2);
  absl::StatusOr<Job> resumed = jobs_.Resume(resume);  // The latest epoch end, not "mid2".
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->resumed_from(), "end2");
  EXPECT_EQ(resumed->spec().num_workers(), 2);
  EXPECT_EQ(resumed->state(), QUEUED);  // One worker: it waits for two.
  EXPECT_FALSE(jobs_.HasPendingStart());

  AddWorker("w1");
  Start(Prepared(2));
  EXPECT_EQ(JobOf(id).state(), RUNNING);
  EXPECT_THAT(JobOf(id).message(), HasSubstr("not bit-identical"));
  EXPECT_EQ(Outbox("w1").back().assign().resume_checkpoint_id(), "end2");
}

TEST_F(JobManagerTest, JobsQueueInOrderAndNeverMixCpuAndGpuWorkers) {
  AddWorker("w0");
  const std::string big = jobs_.Submit(Spec(2), "").record.job().id();
  const std::string small = jobs_.Submit(Spec(1), "").record.job().id();
  EXPECT_EQ(JobOf(small).state(), QUEUED);
  EXPECT_THAT(JobOf(small).message(), HasSubstr("waiting behind " + big));
  ASSERT_TRUE(jobs_.Cancel(big).ok());
  EXPECT_EQ(workers_.Get("w0")->info.job_id(), small);  // Reserved for the next in line.
  Start(Prepared(1));
  EXPECT_EQ(JobOf(small).state(), RUNNING);

  // Two free workers, but of two kinds: a 2-worker job waits, saying why.
  AddWorker("cpu1", "cpu");
  AddWorker("gpu0", "cuda:0");
  const std::string gpu_job = jobs_.Submit(Spec(2), "").record.job().id();
  EXPECT_EQ(JobOf(gpu_job).state(), QUEUED);
  EXPECT_THAT(JobOf(gpu_job).message(),
              HasSubstr("of one device kind (a job never mixes CPU and GPU workers); free: 1 cpu, 1 cuda"));
  AddWorker("gpu1", "cuda:1");
  Start(Prepared(2));
  EXPECT_THAT(JobOf(gpu_job).workers(), ElementsAre("gpu0", "gpu1"));
  const std::string cpu_job = jobs_.Submit(Spec(1), "").record.job().id();
  Start(Prepared(1));
  EXPECT_THAT(JobOf(cpu_job).workers(), ElementsAre("cpu1"));  // The CPU worker was kept free.
}

TEST_F(JobManagerTest, AnEndedAttemptsRendezvousKeysAreDropped) {
  AddWorker("w0");
  const std::string id = jobs_.Submit(Spec(1), "").record.job().id();
  Start(Prepared(1));
  const std::string prefix = Rendezvous::AttemptPrefix(id, 1);
  ASSERT_TRUE(rendezvous_.Set(prefix, prefix + "gloo/0", "address").ok());
  ASSERT_EQ(rendezvous_.KeyCount(prefix), 1);
  ASSERT_TRUE(jobs_.Cancel(id).ok());
  EXPECT_EQ(rendezvous_.KeyCount(prefix), 1);  // Its rank still runs.
  ASSERT_TRUE(jobs_.FinishAssignment(Cancelled("w0", id, 1)).ok());
  EXPECT_EQ(rendezvous_.KeyCount(prefix), 0);
}

TEST_F(JobManagerTest, AStartPreparedForAnEarlierReservationIsIgnored) {
  AddWorker("w0");
  AddWorker("w1");
  const std::string id = jobs_.Submit(Spec(2), "").record.job().id();
  std::optional<PendingStart> stale = jobs_.TakePendingStart();
  ASSERT_TRUE(stale.has_value());
  // While it is prepared, w1 leaves and w2 comes: the job is reserved again, for the
  // same attempt number.
  const WorkerEntry lost = *workers_.Get("w1");
  workers_.MarkDead("w1", clock_.Now());
  jobs_.WorkerLost(lost, "worker 'w1' left");
  AddWorker("w2");
  ASSERT_EQ(workers_.Get("w2")->info.state(), BUSY);
  jobs_.FinishStart(*stale, Prepared(2));  // Made for {w0, w1}: ignored.
  EXPECT_EQ(JobOf(id).state(), QUEUED);
  EXPECT_TRUE(Outbox("w0").empty());

  Start(Prepared(2));  // The new reservation's start, taken once.
  EXPECT_EQ(JobOf(id).state(), RUNNING);
  EXPECT_THAT(JobOf(id).workers(), ElementsAre("w0", "w2"));
  EXPECT_FALSE(jobs_.TakePendingStart().has_value());
}

}  // namespace
}  // namespace ddlm
