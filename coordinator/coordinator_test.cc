#include "coordinator/coordinator.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "common/base/clock.h"
#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/base/file_io.h"
#include "common/training/checkpoint.h"
#include "common/training/model.h"
#include "coordinator/job_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

// Records what the Coordinator pushes.
template <typename T>
class FakeSink : public StreamSink<T> {
 public:
  void Send(const T& item) override {
    EXPECT_FALSE(closed.has_value()) << "Send after Close";
    items.push_back(item);
  }
  void Close(const absl::Status& status) override {
    EXPECT_FALSE(closed.has_value()) << "closed twice";
    closed = status;
  }
  std::vector<T> items;
  std::optional<absl::Status> closed;
};

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    const char* tmp = std::getenv("TEST_TMPDIR");
    CoordinatorOptions options;
    options.state_dir = std::string(tmp ? tmp : "/tmp") + "/coord" + std::to_string(counter++);
    options.heartbeat_timeout = absl::Seconds(10);
    // Each start happens inside the call that reserved its workers (one test turns the
    // preparer's thread on).
    options.prepare_on_own_thread = false;
    // The repository's corpora (where their runfiles lead) and the test's own.
    options.data_roots = {".", tmp ? tmp : "/tmp"};
    if (char real[PATH_MAX]; ::realpath("configs/quickstart_data/train.txt", real) != nullptr) {
      options.data_roots.push_back(std::string(real).substr(0, std::string(real).rfind('/')));
    }
    options_ = options;
    coordinator_ = *Coordinator::Create(options, &clock_);
  }

  JobSpec Spec(int workers, int epochs = 2) {
    JobSpec spec;
    spec.set_name("test");
    spec.mutable_data()->set_path("configs/quickstart_data");
    spec.mutable_data()->set_batch_size(4);
    spec.mutable_model()->set_type(LSTM);
    spec.mutable_model()->set_emsize(8);
    spec.mutable_model()->set_nhid(8);
    spec.mutable_schedule()->set_epochs(epochs);
    spec.mutable_checkpoint()->set_keep_last(1);
    spec.set_num_workers(workers);
    // A failed attempt fails the job, unless a test turns automatic restarts on.
    spec.set_max_restarts(0);
    ApplyDefaults(&spec);
    return spec;
  }

  // The job's events on disk, as a watcher attaching now gets them.
  std::vector<JobEvent> Events(const std::string& job_id) {
    FakeSink<JobEvent> sink;
    const absl::Status attached = coordinator_->AttachEventStream(job_id, 0, &sink);
    EXPECT_TRUE(attached.ok()) << attached;
    if (!sink.closed) coordinator_->DetachEventStream(&sink);
    return sink.items;
  }

  WorkerRef AddWorker(const std::string& id, uint64_t incarnation = 1, const std::string& device = "cpu") {
    RegisterRequest r;
    r.mutable_worker()->set_worker_id(id);
    r.mutable_worker()->set_incarnation(incarnation);
    r.set_host("127.0.0.1");
    r.set_device(device);
    EXPECT_TRUE(coordinator_->Register(r).ok());
    return r.worker();
  }

  // The worker's next command, if one was sent: a command stream attached for a moment
  // (as StreamCommands does) takes what waited for it; the rest waits for later Polls.
  std::optional<WorkerCommand> Poll(const WorkerRef& w) {
    if (polled_by_ != coordinator_.get()) unread_.clear();  // Restarted: its queues are gone.
    polled_by_ = coordinator_.get();
    std::deque<WorkerCommand>& unread = unread_[absl::StrCat(w.worker_id(), "/", w.incarnation())];
    FakeSink<WorkerCommand> sink;
    const absl::Status attached = coordinator_->AttachCommandStream(w, &sink);
    EXPECT_TRUE(attached.ok()) << attached;
    if (!attached.ok()) return std::nullopt;
    coordinator_->DetachCommandStream(&sink);
    unread.insert(unread.end(), sink.items.begin(), sink.items.end());
    if (unread.empty()) return std::nullopt;
    WorkerCommand c = std::move(unread.front());
    unread.pop_front();
    if (c.has_assign()) vocabulary_.assign(c.assign().vocabulary().begin(), c.assign().vocabulary().end());
    return c;
  }

  ReportEvaluationRequest Eval(const WorkerRef& w, const Assignment& a, Split split, int epoch, double loss_sum,
                               int64_t tokens) {
    ReportEvaluationRequest r;
    *r.mutable_worker() = w;
    *r.mutable_attempt() = a.attempt();
    r.set_split(split);
    r.set_epoch(epoch);
    r.set_loss_sum(loss_sum);
    r.set_tokens(tokens);
    return r;
  }

  // Both ranks report; returns the decision rank 0 sees.
  EvaluationDecision EvalBoth(const WorkerRef& w0, const Assignment& a0, const WorkerRef& w1, const Assignment& a1,
                              Split split, int epoch, double l0, double l1) {
    // Rank 0 reports first and, with a past deadline, gets DEADLINE_EXCEEDED.
    EXPECT_EQ(coordinator_->ReportEvaluation(Eval(w0, a0, split, epoch, l0, 100), absl::ZeroDuration()).status().code(),
              absl::StatusCode::kDeadlineExceeded);
    auto d1 = coordinator_->ReportEvaluation(Eval(w1, a1, split, epoch, l1, 300), absl::ZeroDuration());
    EXPECT_TRUE(d1.ok()) << d1.status();
    // Reporting again is harmless and now returns the decision.
    auto d0 = coordinator_->ReportEvaluation(Eval(w0, a0, split, epoch, l0, 100), absl::ZeroDuration());
    EXPECT_TRUE(d0.ok()) << d0.status();
    EXPECT_EQ(d0->loss(), d1->loss());
    return *d0;
  }

  std::string CheckpointBytes(const JobSpec& spec, int epoch, int64_t step, double lr, double val_loss, double best,
                              int64_t batch = 0) {
    Checkpoint c;
    *c.header.mutable_spec() = spec;
    c.header.mutable_position()->set_epoch(epoch);
    c.header.mutable_position()->set_batch(batch);
    c.header.mutable_position()->set_global_step(step);
    c.header.set_lr(lr);
    c.header.set_val_loss(val_loss);
    c.header.set_best_val_loss(best);
    c.tensors["param/w"] = torch::ones({3});
    for (const std::string& w : vocabulary_) c.header.add_vocabulary(w);  // The job's.
    return *SerializeCheckpoint(c);
  }

  // A whole upload at once, as the WorkerService adapter makes it from chunks.
  absl::StatusOr<CheckpointInfo> Upload(const WorkerRef& w, const AttemptRef& ref, const std::string& bytes) {
    auto upload = coordinator_->BeginUpload(w, ref);
    if (!upload.ok()) return upload.status();
    if (absl::Status s = (*upload)->Append(bytes); !s.ok()) return s;
    return (*upload)->Finish();
  }

  // A kept checkpoint as a worker downloads it.
  absl::StatusOr<std::string> Download(const WorkerRef& w, const std::string& job_id, const std::string& id) {
    absl::StatusOr<std::string> path = coordinator_->CheckpointFile(w, job_id, id);
    if (!path.ok()) return path.status();
    return ReadFile(*path);
  }

  // 11 s pass in which only `alive` heartbeats: every other worker is declared dead.
  void OutliveOthers(const WorkerRef& alive) {
    clock_.Advance(absl::Seconds(8));
    ASSERT_TRUE(coordinator_->Heartbeat(alive).ok());
    clock_.Advance(absl::Seconds(3));
    coordinator_->CheckHeartbeats();
  }

  void Finish(const WorkerRef& w, const Assignment& a, bool ok = true, bool cancelled = false) {
    FinishAssignmentRequest r;
    *r.mutable_worker() = w;
    *r.mutable_attempt() = a.attempt();
    r.set_ok(ok);
    r.set_cancelled(cancelled);
    r.set_error(ok ? "" : "boom");
    ASSERT_TRUE(coordinator_->FinishAssignment(r).ok());
  }

  FakeClock clock_;
  CoordinatorOptions options_;
  std::vector<std::string> vocabulary_;                      // Of the latest assignment Poll saw.
  std::map<std::string, std::deque<WorkerCommand>> unread_;  // By worker and incarnation.
  const Coordinator* polled_by_ = nullptr;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(CoordinatorTest, RejectsBadSpecsNamingTheField) {
  JobSpec spec = Spec(1);
  spec.mutable_data()->set_batch_size(0);
  auto job = coordinator_->SubmitJob(spec);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(job.status().message(), HasSubstr("batch_size"));

  spec = Spec(1);
  spec.mutable_data()->set_path("no/such/dir");
  EXPECT_EQ(coordinator_->SubmitJob(spec).status().code(), absl::StatusCode::kNotFound);

  EXPECT_TRUE(coordinator_->ListJobs().empty());  // Refused in the call: no job.

  // Valid, but 2 x 60,000 rows is more than the corpus has: found once it is tokenized,
  // the job FAILED naming the file.
  spec = Spec(1);
  spec.mutable_data()->set_batch_size(60000);
  job = coordinator_->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), FAILED);
  EXPECT_THAT(job->message(), HasSubstr("train.txt has "));
  EXPECT_THAT(job->message(), HasSubstr("too few for 1 workers x data.batch_size 60000"));
  EXPECT_EQ(coordinator_->ListJobs().size(), 1u);
  EXPECT_EQ(coordinator_->GetJob("job-9").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->GetJob("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorTest, JobWaitsForWorkersThenRunsToSuccess) {
  auto job = coordinator_->SubmitJob(Spec(2));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), QUEUED);
  EXPECT_THAT(job->message(), HasSubstr("waiting for 2 free worker(s): 0 free"));

  WorkerRef w0 = AddWorker("w0");
  EXPECT_THAT(coordinator_->GetJob(job->id())->message(), HasSubstr("1 free of 1"));
  WorkerRef w1 = AddWorker("w1");
  EXPECT_EQ(coordinator_->GetJob(job->id())->state(), RUNNING);

  auto c0 = Poll(w0);
  auto c1 = Poll(w1);
  ASSERT_TRUE(c0 && c0->has_assign());
  ASSERT_TRUE(c1 && c1->has_assign());
  const Assignment& a0 = c0->assign();
  const Assignment& a1 = c1->assign();
  EXPECT_EQ(a0.attempt().rank(), 0);
  EXPECT_EQ(a1.attempt().rank(), 1);
  EXPECT_EQ(a0.world_size(), 2);
  EXPECT_EQ(a0.train_tokens(), a1.train_tokens());
  EXPECT_EQ(a0.train_tokens() % 4, 0);
  EXPECT_GT(a0.vocabulary_size(), 100);
  EXPECT_FALSE(Poll(w0).has_value());

  // Shards are the ranks' contiguous slices.
  DownloadShardRequest shard;
  *shard.mutable_worker() = w1;
  *shard.mutable_attempt() = a1.attempt();
  shard.set_split(TRAIN);
  auto source = coordinator_->Shard(shard);
  ASSERT_TRUE(source.ok());
  EXPECT_EQ(source->tokens(), a1.train_tokens());
  EXPECT_EQ(source->split, TRAIN);
  EXPECT_EQ(source->begin, a0.train_tokens());  // Right after rank 0's, which starts at 0.
  *shard.mutable_worker() = w0;                 // w0 is not rank 1.
  EXPECT_EQ(coordinator_->Shard(shard).status().code(), absl::StatusCode::kAborted);

  // Metrics are combined once both ranks report.
  ReportMetricsRequest m;
  *m.mutable_worker() = w0;
  *m.mutable_attempt() = a0.attempt();
  m.mutable_metrics()->set_epoch(1);
  m.mutable_metrics()->set_batch(9);
  m.mutable_metrics()->set_loss(2.0);
  m.mutable_metrics()->set_tokens_per_second(100);
  ASSERT_TRUE(coordinator_->ReportMetrics(m).ok());
  EXPECT_FALSE(coordinator_->GetJob(job->id())->has_last_training());
  *m.mutable_worker() = w1;
  *m.mutable_attempt() = a1.attempt();
  m.mutable_metrics()->set_loss(4.0);
  ASSERT_TRUE(coordinator_->ReportMetrics(m).ok());
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_DOUBLE_EQ(now.last_training().loss(), 3.0);
  EXPECT_DOUBLE_EQ(now.last_training().ppl(), std::exp(3.0));
  EXPECT_DOUBLE_EQ(now.last_training().tokens_per_second(), 200);

  // Validation combines sums exactly: (100 + 900) / (100 + 300) = 2.5.
  const double lr = now.spec().optimizer().lr();
  EvaluationDecision d = EvalBoth(w0, a0, w1, a1, VALID, 1, 100, 900);
  EXPECT_DOUBLE_EQ(d.loss(), 2.5);
  EXPECT_EQ(d.tokens(), 400);
  EXPECT_TRUE(d.best());
  EXPECT_DOUBLE_EQ(d.lr(), lr);
  auto info = Upload(w0, a0.attempt(), CheckpointBytes(Spec(2), 2, 10, lr, 2.5, 2.5));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id(), "e0002-s00000010");
  EXPECT_TRUE(info->best());
  // Only rank 0 uploads; damaged bytes are DATA_LOSS.
  EXPECT_EQ(Upload(w1, a1.attempt(), CheckpointBytes(Spec(2), 2, 10, lr, 2.5, 2.5)).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string damaged = CheckpointBytes(Spec(2), 2, 11, lr, 2.5, 2.5);
  damaged[damaged.size() / 2] ^= 1;
  EXPECT_EQ(Upload(w0, a0.attempt(), damaged).status().code(), absl::StatusCode::kDataLoss);

  // Epoch 2 does not improve: the learning rate anneals by anneal_factor.
  d = EvalBoth(w0, a0, w1, a1, VALID, 2, 200, 900);
  EXPECT_FALSE(d.best());
  EXPECT_DOUBLE_EQ(d.lr(), lr / now.spec().optimizer().anneal_factor());
  ASSERT_TRUE(Upload(w0, a0.attempt(), CheckpointBytes(Spec(2), 3, 20, d.lr(), 2.75, 2.5)).ok());
  // keep_last 1 plus the best: both are kept.
  auto kept = *coordinator_->ListCheckpoints(job->id());
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_TRUE(kept[0].best());
  EXPECT_FALSE(kept[1].best());

  d = EvalBoth(w0, a0, w1, a1, TEST, 2, 100, 500);
  EXPECT_DOUBLE_EQ(d.loss(), 1.5);
  Finish(w0, a0);
  EXPECT_EQ(coordinator_->GetJob(job->id())->state(), RUNNING);
  Finish(w1, a1);
  now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), SUCCEEDED);
  EXPECT_DOUBLE_EQ(now.test_ppl(), std::exp(1.5));
  EXPECT_DOUBLE_EQ(now.best_val_ppl(), std::exp(2.5));

  // A watcher now gets every event and is closed: the job has ended.
  FakeSink<JobEvent> watcher;
  ASSERT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &watcher).ok());
  ASSERT_TRUE(watcher.closed.has_value());
  EXPECT_TRUE(watcher.closed->ok());
  int epochs = 0, checkpoints = 0, tests = 0, trainings = 0;
  for (const JobEvent& e : watcher.items) {
    epochs += e.has_epoch();
    checkpoints += e.has_checkpoint();
    tests += e.has_test();
    trainings += e.has_training();
  }
  EXPECT_EQ(epochs, 2);
  EXPECT_EQ(checkpoints, 2);
  EXPECT_EQ(tests, 1);
  EXPECT_EQ(trainings, 1);
  EXPECT_EQ(watcher.items.back().state().state(), SUCCEEDED);

  // Generate checks its request before anything else (GenerateSamplesFromTheBest...
  // samples from real checkpoints).
  GenerateRequest g;
  g.set_job_id(job->id());
  g.set_words(0);
  EXPECT_EQ(coordinator_->Generate(g).status().code(), absl::StatusCode::kInvalidArgument);

  // The workers are free again; state survives a restart of the coordinator.
  EXPECT_EQ(coordinator_->ListWorkers()[0].state(), IDLE);
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), SUCCEEDED);
  EXPECT_EQ(coordinator_->ListCheckpoints(job->id())->size(), 2u);
  EXPECT_EQ(coordinator_->SubmitJob(Spec(1))->id(), "job-2");
}

TEST_F(CoordinatorTest, EventsGoToTheLogAndAnEndedJobIsCompacted) {
  auto job = coordinator_->SubmitJob(Spec(1));
  ASSERT_TRUE(job.ok()) << job.status();
  WorkerRef w = AddWorker("w0");
  auto c = Poll(w);
  ASSERT_TRUE(c && c->has_assign());
  ReportMetricsRequest m;
  *m.mutable_worker() = w;
  *m.mutable_attempt() = c->assign().attempt();
  for (int batch = 0; batch < 30; ++batch) {
    m.mutable_metrics()->set_epoch(1);
    m.mutable_metrics()->set_batch(batch);
    m.mutable_metrics()->set_loss(5.0 - 0.1 * batch);
    ASSERT_TRUE(coordinator_->ReportMetrics(m).ok());
  }
  const std::string dir = options_.state_dir + "/jobs/" + job->id();
  // While it runs, the snapshot stays as submitted and the events are in the log,
  // already on disk when ReportMetrics answered.
  EXPECT_EQ(DecodeJobRecord(*ReadFile(dir + "/job.pb"), "job.pb")->events_size(), 0);
  EXPECT_GT(ReadFile(dir + "/events.log")->size(), 0u);
  const int64_t events = coordinator_->GetJob(job->id())->last_event_sequence();
  EXPECT_EQ(events, 3 + 30);  // PREPARING, QUEUED, RUNNING, 30 training events.

  // A restart mid-attempt replays the log; the job ends FAILED and is compacted.
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  Job reloaded = *coordinator_->GetJob(job->id());
  EXPECT_EQ(reloaded.state(), FAILED);
  EXPECT_EQ(reloaded.last_event_sequence(), events + 1);
  EXPECT_DOUBLE_EQ(reloaded.last_training().loss(), 5.0 - 0.1 * 29);
  JobRecord snapshot = *DecodeJobRecord(*ReadFile(dir + "/job.pb"), "job.pb");
  ASSERT_EQ(snapshot.events_size(), events + 1);
  for (int i = 0; i < snapshot.events_size(); ++i) EXPECT_EQ(snapshot.events(i).sequence(), i + 1);
  EXPECT_DOUBLE_EQ(snapshot.events(32).training().loss(), 5.0 - 0.1 * 29);
  EXPECT_EQ(snapshot.events(33).state().state(), FAILED);
  EXPECT_EQ(ReadFile(dir + "/events.log")->size(), 0u);
}

TEST_F(CoordinatorTest, AJobIsPreparedWithoutTheLockAndALostWorkerRequeuesIt) {
  WorkerRef w0, w1;
  w0.set_worker_id("w0");
  w0.set_incarnation(1);
  w1.set_worker_id("w1");
  w1.set_incarnation(1);
  std::vector<std::string> seen;
  bool lose_w1 = true;
  options_.before_prepare_for_testing = [&](const std::string& job_id) {
    // Runs where the corpus is read and the shards encoded. These calls need the
    // coordinator's lock free (they would deadlock otherwise).
    seen.push_back(coordinator_->GetJob(job_id)->message());
    EXPECT_TRUE(coordinator_->Heartbeat(w0).ok());
    EXPECT_EQ(coordinator_->ListWorkers()[0].state(), BUSY);  // Reserved.
    if (lose_w1) {
      lose_w1 = false;
      EXPECT_TRUE(coordinator_->Deregister(w1).ok());
    }
  };
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);

  auto job = coordinator_->SubmitJob(Spec(2));
  ASSERT_TRUE(job.ok()) << job.status();
  AddWorker("w0");
  AddWorker("w1");  // Reserves w0 and w1; w1 leaves while the shards are prepared.
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_THAT(seen[0], HasSubstr("starting on 2 worker(s)"));
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), QUEUED);  // Nothing ran: back in the queue, not failed.
  EXPECT_THAT(now.message(), HasSubstr("waiting for 2 free worker(s): 1 free"));
  EXPECT_FALSE(Poll(w0).has_value());

  AddWorker("w2");
  now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), RUNNING);
  EXPECT_EQ(now.attempt(), 1);
  EXPECT_THAT(now.workers(), ::testing::ElementsAre("w0", "w2"));
  auto c = Poll(w0);
  ASSERT_TRUE(c && c->has_assign());
  EXPECT_EQ(c->assign().attempt().attempt(), 1);
  EXPECT_EQ(c->assign().attempt().job_id(), job->id());
  EXPECT_GT(c->assign().vocabulary_size(), 100);
}

// An event stream a test can wait on: it is fed from the preparer's thread.
class AwaitableSink : public StreamSink<JobEvent> {
 public:
  void Send(const JobEvent& event) override {
    absl::MutexLock lock(&mu_);
    if (event.has_state()) states_.push_back(event.state().state());
  }
  void Close(const absl::Status&) override {}
  // Whether the stream carries `state` within a minute (a failure, not a hang, if not).
  bool Await(JobState state) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::find(states_.begin(), states_.end(), state) != states_.end();
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), absl::Minutes(1));
  }

 private:
  absl::Mutex mu_;
  std::vector<JobState> states_ ABSL_GUARDED_BY(mu_);
};

// However a test with a blocking hook ends, the hook is let go and the coordinator gone
// before the locals the hook uses.
struct ReleaseThenDestroy {
  absl::Notification* release;
  std::unique_ptr<Coordinator>* coordinator;
  ~ReleaseThenDestroy() {
    if (!release->HasBeenNotified()) release->Notify();
    coordinator->reset();
  }
};

TEST_F(CoordinatorTest, AnAttemptIsPreparedOnTheCoordinatorsOwnThreadAndNoCallWaitsForIt) {
  absl::Notification preparing, release;
  std::thread::id prepared_on;
  options_.prepare_on_own_thread = true;
  options_.before_prepare_for_testing = [&](const std::string&) {
    prepared_on = std::this_thread::get_id();
    preparing.Notify();
    release.WaitForNotification();  // A corpus that takes long to read.
  };
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  AwaitableSink sink;  // Outlives the coordinator (below).
  const ReleaseThenDestroy cleanup{&release, &coordinator_};
  auto job = coordinator_->SubmitJob(Spec(1));
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &sink).ok());

  // The registration reserves w0 and answers while the attempt is being prepared (it
  // would hang here otherwise), as do the calls below.
  WorkerRef w = AddWorker("w0");
  ASSERT_TRUE(preparing.WaitForNotificationWithTimeout(absl::Minutes(1)));
  EXPECT_NE(prepared_on, std::this_thread::get_id());
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), QUEUED);
  EXPECT_THAT(now.message(), HasSubstr("starting on 1 worker(s)"));
  EXPECT_TRUE(coordinator_->Heartbeat(w).ok());
  auto other = coordinator_->SubmitJob(Spec(1));  // Another job: it waits for a worker.
  ASSERT_TRUE(other.ok()) << other.status();
  AwaitableSink other_sink;
  ASSERT_TRUE(coordinator_->AttachEventStream(other->id(), 0, &other_sink).ok());
  ASSERT_TRUE(other_sink.Await(QUEUED));  // Its corpus (the same) found in the token cache.
  coordinator_->DetachEventStream(&other_sink);
  EXPECT_FALSE(Poll(w).has_value());

  release.Notify();
  ASSERT_TRUE(sink.Await(RUNNING));  // Once the start is on disk.
  coordinator_->DetachEventStream(&sink);
  now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), RUNNING);
  EXPECT_THAT(now.workers(), ::testing::ElementsAre("w0"));
  auto c = Poll(w);
  ASSERT_TRUE(c && c->has_assign());
  EXPECT_EQ(c->assign().attempt().job_id(), job->id());
  EXPECT_EQ(coordinator_->GetJob(other->id())->state(), QUEUED);
}

TEST_F(CoordinatorTest, ASubmittedJobIsPreparingWhileItsCorpusIsTokenizedAndACancelThenEndsIt) {
  absl::Notification tokenizing, release;
  options_.prepare_on_own_thread = true;
  options_.before_tokenize_for_testing = [&](const std::string&) {
    if (tokenizing.HasBeenNotified()) return;  // The first job's only.
    tokenizing.Notify();
    release.WaitForNotification();  // A corpus that takes long to tokenize.
  };
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  AwaitableSink sink;  // Outlives the coordinator (below).
  const ReleaseThenDestroy cleanup{&release, &coordinator_};

  // The call answers at once, the job PREPARING; a free worker is not reserved for it.
  auto job = coordinator_->SubmitJob(Spec(1));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), PREPARING);
  EXPECT_THAT(job->message(), HasSubstr("tokenizing its corpus"));
  ASSERT_TRUE(tokenizing.WaitForNotificationWithTimeout(absl::Minutes(1)));
  WorkerRef w = AddWorker("w0");
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), PREPARING);
  EXPECT_TRUE(now.workers().empty());
  EXPECT_FALSE(Poll(w).has_value());

  // Cancelled while preparing: CANCELLED, and it stays so once the tokenizing ends.
  auto cancelled = coordinator_->CancelJob(job->id());
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), CANCELLED);
  EXPECT_THAT(cancelled->message(), HasSubstr("cancelled while its corpus was being prepared"));
  release.Notify();
  // The next job's corpus is the same, found in the cache: QUEUED, then RUNNING on w0.
  auto next = coordinator_->SubmitJob(Spec(1));
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(coordinator_->AttachEventStream(next->id(), 0, &sink).ok());
  ASSERT_TRUE(sink.Await(RUNNING));
  coordinator_->DetachEventStream(&sink);
  EXPECT_EQ(coordinator_->GetJob(job->id())->state(), CANCELLED);
  auto c = Poll(w);
  ASSERT_TRUE(c && c->has_assign());
  EXPECT_EQ(c->assign().attempt().job_id(), next->id());
}

TEST_F(CoordinatorTest, AJobPreparingWhenTheCoordinatorStoppedIsPreparedByTheNext) {
  // The state directory as it is while the job's corpus is tokenized (the job's record
  // is on disk, PREPARING), copied aside: a coordinator that stopped then.
  const std::string stopped = options_.state_dir + "-stopped";
  options_.before_tokenize_for_testing = [&](const std::string&) {
    std::filesystem::copy(options_.state_dir, stopped, std::filesystem::copy_options::recursive);
  };
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  auto job = coordinator_->SubmitJob(Spec(1));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), QUEUED);

  options_.before_tokenize_for_testing = nullptr;
  options_.state_dir = stopped;
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  Job again = *coordinator_->GetJob(job->id());
  EXPECT_EQ(again.state(), QUEUED);  // Prepared again (inline here) when it started.
  std::vector<JobState> states;
  FakeSink<JobEvent> sink;
  ASSERT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &sink).ok());
  for (const JobEvent& e : sink.items) {
    if (e.has_state()) states.push_back(e.state().state());
  }
  coordinator_->DetachEventStream(&sink);
  EXPECT_THAT(states, ::testing::ElementsAre(PREPARING, QUEUED));
}

TEST_F(CoordinatorTest, AJobsCorpusIsTokenizedOnceFromItsSubmissionToItsRestartAndByTheNextCoordinator) {
  JobSpec spec = Spec(1);
  spec.set_max_restarts(1);
  auto job = coordinator_->SubmitJob(spec);  // Tokenizes it; no worker yet.
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(coordinator_->TokenCacheCounts().builds, 1);
  EXPECT_EQ(coordinator_->TokenCacheCounts().hits, 0);
  EXPECT_EQ(ListDirectory(coordinator_->TokenCacheDir()).size(), 1u);

  WorkerRef w = AddWorker("w0");  // Starts it from the cache.
  ASSERT_EQ(coordinator_->GetJob(job->id())->state(), RUNNING);
  auto c = Poll(w);
  ASSERT_TRUE(c && c->has_assign());
  Finish(w, c->assign(), /*ok=*/false);  // Restarted on w0, from the cache again.
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), RUNNING);
  EXPECT_EQ(now.attempt(), 2);
  TokenCache::Counts counts = coordinator_->TokenCacheCounts();
  EXPECT_EQ(counts.builds, 1);
  EXPECT_EQ(counts.hits, 2);

  coordinator_.reset();  // The next coordinator opens what this one wrote.
  coordinator_ = *Coordinator::Create(options_, &clock_);
  auto again = coordinator_->SubmitJob(spec);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(coordinator_->TokenCacheCounts().builds, 0);
  EXPECT_EQ(coordinator_->TokenCacheCounts().opens, 1);
}

TEST_F(CoordinatorTest, HeartbeatsAndQueriesAreAnsweredWhileARecordWriteIsStuck) {
  // A disk that stalls: the first record write after `stall` is armed blocks until
  // released, as a slow fsync would.
  absl::Notification stalled, release;
  std::atomic<bool> stall{false};
  options_.before_record_write_for_testing = [&] {
    if (!stall.exchange(false)) return;
    stalled.Notify();
    release.WaitForNotification();
  };
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  auto job = coordinator_->SubmitJob(Spec(1));
  ASSERT_TRUE(job.ok()) << job.status();
  WorkerRef w = AddWorker("w0");
  auto c = Poll(w);
  ASSERT_TRUE(c && c->has_assign());

  stall = true;
  std::thread reporter([&] {
    ReportMetricsRequest m;
    *m.mutable_worker() = w;
    *m.mutable_attempt() = c->assign().attempt();
    m.mutable_metrics()->set_epoch(1);
    m.mutable_metrics()->set_batch(9);
    m.mutable_metrics()->set_loss(2.0);
    // Answers only once its event is on disk.
    EXPECT_TRUE(coordinator_->ReportMetrics(m).ok());
  });
  stalled.WaitForNotification();
  // The event's write is stuck; none of these waits for it (each would hang here if
  // the write held the coordinator's lock).
  EXPECT_TRUE(coordinator_->Heartbeat(w).ok());
  auto now = coordinator_->GetJob(job->id());
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->state(), RUNNING);
  EXPECT_EQ(coordinator_->ListJobs().size(), 1u);
  EXPECT_EQ(coordinator_->ListWorkers().size(), 1u);
  release.Notify();
  reporter.join();
  EXPECT_DOUBLE_EQ(coordinator_->GetJob(job->id())->last_training().loss(), 2.0);
}

TEST_F(CoordinatorTest, AQueuedJobWhoseCorpusChangedReadsItAgainWhenItStarts) {
  // A copy of the corpus that goes away while the job waits for workers.
  const std::string corpus = options_.state_dir + "-corpus";
  ASSERT_EQ(std::system(("mkdir -p " + corpus + " && cp configs/quickstart_data/*.txt " + corpus).c_str()), 0);
  JobSpec spec = Spec(1);
  spec.mutable_data()->set_path(corpus);
  auto job = coordinator_->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(std::remove((corpus + "/train.txt").c_str()), 0);
  WorkerRef w = AddWorker("w0");
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), FAILED);
  EXPECT_THAT(now.message(), HasSubstr("train.txt"));
  EXPECT_EQ(coordinator_->ListWorkers()[0].state(), IDLE);  // Released.
  EXPECT_FALSE(Poll(w).has_value());
}

TEST_F(CoordinatorTest, ACommandStreamGetsQueuedThenNewCommandsUntilItsWorkerIsReplaced) {
  auto job = coordinator_->SubmitJob(Spec(1));
  ASSERT_TRUE(job.ok()) << job.status();
  WorkerRef w = AddWorker("w0");  // The job starts: its assignment waits in the outbox.
  FakeSink<WorkerCommand> sink;
  ASSERT_TRUE(coordinator_->AttachCommandStream(w, &sink).ok());
  ASSERT_EQ(sink.items.size(), 1u);
  EXPECT_TRUE(sink.items[0].has_assign());

  ASSERT_TRUE(coordinator_->CancelJob(job->id()).ok());  // Pushed as it happens.
  ASSERT_EQ(sink.items.size(), 2u);
  EXPECT_TRUE(sink.items[1].has_cancel());
  EXPECT_FALSE(sink.closed.has_value());

  // A second stream for the same worker replaces the first.
  FakeSink<WorkerCommand> second;
  ASSERT_TRUE(coordinator_->AttachCommandStream(w, &second).ok());
  ASSERT_TRUE(sink.closed.has_value());
  EXPECT_EQ(sink.closed->code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(second.items.empty());  // The first stream had them all: nothing left behind.

  AddWorker("w0", /*incarnation=*/2);  // The worker restarted: its old stream ends.
  ASSERT_TRUE(second.closed.has_value());
  EXPECT_EQ(second.closed->code(), absl::StatusCode::kAborted);
  EXPECT_THAT(second.closed->message(), HasSubstr("registered again"));
  FakeSink<WorkerCommand> stale;
  EXPECT_EQ(coordinator_->AttachCommandStream(w, &stale).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(stale.items.empty());
  EXPECT_FALSE(stale.closed.has_value());
}

TEST_F(CoordinatorTest, ADeadWorkersStreamIsClosedAndADetachedOneGetsNothing) {
  WorkerRef w0 = AddWorker("w0");
  WorkerRef w1 = AddWorker("w1");
  FakeSink<WorkerCommand> s0, s1;
  ASSERT_TRUE(coordinator_->AttachCommandStream(w0, &s0).ok());
  ASSERT_TRUE(coordinator_->AttachCommandStream(w1, &s1).ok());
  coordinator_->DetachCommandStream(&s1);
  clock_.Advance(absl::Seconds(11));
  ASSERT_TRUE(coordinator_->Heartbeat(w1).ok());
  coordinator_->CheckHeartbeats();  // w0 missed its heartbeats.
  ASSERT_TRUE(s0.closed.has_value());
  EXPECT_EQ(s0.closed->code(), absl::StatusCode::kAborted);
  EXPECT_THAT(s0.closed->message(), HasSubstr("declared dead"));
  auto job = coordinator_->SubmitJob(Spec(1));  // Starts on w1, whose stream is detached.
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(s1.items.empty());
  EXPECT_FALSE(s1.closed.has_value());
  auto c = Poll(w1);  // Left in the outbox for the next stream.
  ASSERT_TRUE(c && c->has_assign());
}

TEST_F(CoordinatorTest, AnEventStreamGetsTheBacklogThenEachEventAndEndsWithTheJob) {
  auto job = coordinator_->SubmitJob(Spec(1));
  ASSERT_TRUE(job.ok()) << job.status();
  FakeSink<JobEvent> from_start, from_now;
  ASSERT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &from_start).ok());
  ASSERT_EQ(from_start.items.size(), 2u);  // PREPARING, QUEUED.
  EXPECT_EQ(from_start.items[0].state().state(), PREPARING);
  EXPECT_EQ(from_start.items[1].state().state(), QUEUED);
  ASSERT_TRUE(coordinator_->AttachEventStream(job->id(), 2, &from_now).ok());
  EXPECT_TRUE(from_now.items.empty());

  WorkerRef w = AddWorker("w0");  // RUNNING.
  auto c = Poll(w);
  ASSERT_TRUE(c && c->has_assign());
  ASSERT_EQ(from_start.items.size(), 3u);
  EXPECT_EQ(from_start.items[2].state().state(), RUNNING);
  EXPECT_EQ(from_now.items.size(), 1u);
  EXPECT_FALSE(from_start.closed.has_value());

  ASSERT_TRUE(coordinator_->CancelJob(job->id()).ok());
  Finish(w, c->assign(), /*ok=*/false, /*cancelled=*/true);  // CANCELLED: the streams end.
  ASSERT_EQ(from_start.items.size(), 4u);
  EXPECT_EQ(from_start.items[3].state().state(), CANCELLED);
  for (const auto* sink : {&from_start, &from_now}) {
    ASSERT_TRUE(sink->closed.has_value());
    EXPECT_TRUE(sink->closed->ok()) << *sink->closed;
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ(from_start.items[i].sequence(), i + 1);

  // A finished job: the backlog, then the end at once.
  FakeSink<JobEvent> late;
  ASSERT_TRUE(coordinator_->AttachEventStream(job->id(), 3, &late).ok());
  ASSERT_EQ(late.items.size(), 1u);
  ASSERT_TRUE(late.closed.has_value());
  EXPECT_TRUE(late.closed->ok());

  FakeSink<JobEvent> bad;
  EXPECT_EQ(coordinator_->AttachEventStream("job-99", 0, &bad).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->AttachEventStream(job->id(), -1, &bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(bad.items.empty());
  EXPECT_FALSE(bad.closed.has_value());
}

TEST_F(CoordinatorTest, AWorkerIdIsBoundToTheCredentialThatRegisteredIt) {
  auto registration = [](uint64_t incarnation, const std::string& host) {
    RegisterRequest r;
    r.mutable_worker()->set_worker_id("w0");
    r.mutable_worker()->set_incarnation(incarnation);
    r.set_host(host);
    r.set_device("cpu");
    return r;
  };
  // A registration that cannot succeed binds nothing: it cannot lock the id out.
  EXPECT_EQ(coordinator_->Register(registration(0, "127.0.0.1"), "mallory").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(coordinator_->Register(registration(1, ""), "mallory").status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(coordinator_->Register(registration(1, "127.0.0.1"), "rack1").ok());
  // Another credential can neither register over it nor act as it.
  EXPECT_EQ(coordinator_->Register(registration(2, "10.0.0.9"), "mallory").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(coordinator_->CheckWorkerCredential("w0", "mallory").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(coordinator_->CheckWorkerCredential("w0", "rack1").ok());
  EXPECT_TRUE(coordinator_->Heartbeat(registration(1, "").worker()).ok());          // Still the live one.
  EXPECT_TRUE(coordinator_->Register(registration(3, "127.0.0.1"), "rack1").ok());  // Its own restart.
  // Dead past the grace period, it is forgotten, and the id is free again.
  clock_.Advance(options_.heartbeat_timeout + absl::Seconds(1));
  coordinator_->CheckHeartbeats();
  clock_.Advance(options_.dead_worker_grace + absl::Seconds(1));
  coordinator_->CheckHeartbeats();
  EXPECT_TRUE(coordinator_->Register(registration(4, "10.0.0.9"), "rack2").ok());
}

TEST_F(CoordinatorTest, WatchStreamsAreCappedAndAClosedOneFreesItsPlace) {
  options_.max_event_streams = 2;
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  auto job = coordinator_->SubmitJob(Spec(1));
  ASSERT_TRUE(job.ok()) << job.status();
  FakeSink<JobEvent> a, b, c;
  ASSERT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &a).ok());
  ASSERT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &b).ok());
  const absl::Status third = coordinator_->AttachEventStream(job->id(), 0, &c);
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(third.message(), HasSubstr("2 WatchJob streams are open"));
  EXPECT_TRUE(c.items.empty());  // Untouched.
  coordinator_->DetachEventStream(&a);
  EXPECT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &c).ok());
  EXPECT_EQ(c.items.size(), 2u);  // PREPARING, QUEUED.
  // A finished job's stream ends at once and takes no place.
  ASSERT_TRUE(coordinator_->CancelJob(job->id()).ok());
  EXPECT_TRUE(b.closed.has_value() && c.closed.has_value());
  FakeSink<JobEvent> d, e, f;
  EXPECT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &d).ok());
  EXPECT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &e).ok());
  EXPECT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &f).ok());
  EXPECT_TRUE(f.closed.has_value());
}

TEST_F(CoordinatorTest, ShutdownClosesEveryStream) {
  auto job = coordinator_->SubmitJob(Spec(2));
  ASSERT_TRUE(job.ok()) << job.status();
  WorkerRef w = AddWorker("w0");
  FakeSink<WorkerCommand> commands;
  FakeSink<JobEvent> events;
  ASSERT_TRUE(coordinator_->AttachCommandStream(w, &commands).ok());
  ASSERT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &events).ok());
  coordinator_->Shutdown();
  ASSERT_TRUE(commands.closed.has_value());
  ASSERT_TRUE(events.closed.has_value());
  EXPECT_EQ(commands.closed->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(events.closed->code(), absl::StatusCode::kUnavailable);
  FakeSink<JobEvent> after;
  EXPECT_EQ(coordinator_->AttachEventStream(job->id(), 0, &after).code(), absl::StatusCode::kUnavailable);
}

TEST_F(CoordinatorTest, MissedHeartbeatsFailTheAttemptAndCancelThePeers) {
  WorkerRef w0 = AddWorker("w0");
  WorkerRef w1 = AddWorker("w1");
  auto job = coordinator_->SubmitJob(Spec(2));
  ASSERT_TRUE(job.ok());
  auto a0 = Poll(w0)->assign();
  auto a1 = Poll(w1)->assign();
  OutliveOthers(w0);
  // w1 is dead: its calls are ABORTED, and w0 is told to stop.
  EXPECT_EQ(coordinator_->Heartbeat(w1).code(), absl::StatusCode::kAborted);
  auto cancel = Poll(w0);
  ASSERT_TRUE(cancel && cancel->has_cancel());
  EXPECT_EQ(cancel->cancel().job_id(), job->id());
  // A blocked evaluation barrier gives up with ABORTED instead of hanging.
  EXPECT_EQ(coordinator_->ReportEvaluation(Eval(w0, a0, VALID, 1, 1, 1), absl::InfiniteDuration()).status().code(),
            absl::StatusCode::kAborted);
  Finish(w0, a0, false, true);
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), FAILED);
  EXPECT_THAT(now.message(), HasSubstr("'w1' (rank 1) stopped heartbeating"));
  // A late report from the dead rank's attempt is refused.
  ReportMetricsRequest m;
  *m.mutable_worker() = w0;
  *m.mutable_attempt() = a0.attempt();
  EXPECT_EQ(coordinator_->ReportMetrics(m).code(), absl::StatusCode::kAborted);
  (void)a1;
}

TEST_F(CoordinatorTest, RestartedWorkerFailsItsAttempt) {
  WorkerRef w0 = AddWorker("w0", 1);
  auto job = coordinator_->SubmitJob(Spec(1));
  auto a0 = Poll(w0)->assign();
  WorkerRef again = AddWorker("w0", 2);
  EXPECT_EQ(coordinator_->Heartbeat(w0).code(), absl::StatusCode::kAborted);
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), FAILED);
  EXPECT_THAT(now.message(), HasSubstr("restarted"));
  // The new incarnation is idle and takes the next job.
  auto job2 = coordinator_->SubmitJob(Spec(1));
  EXPECT_EQ(coordinator_->GetJob(job2->id())->state(), RUNNING);
  (void)a0;
  (void)again;
}

TEST_F(CoordinatorTest, ResumeStartsANewAttemptFromTheCheckpoint) {
  WorkerRef w0 = AddWorker("w0");
  auto job = coordinator_->SubmitJob(Spec(1, 1));
  auto a0 = Poll(w0)->assign();
  ASSERT_TRUE(Upload(w0, a0.attempt(), CheckpointBytes(Spec(1), 2, 10, 5.0, 2.0, 2.0)).ok());
  ASSERT_TRUE(coordinator_->CancelJob(job->id()).ok());
  Poll(w0);
  Finish(w0, a0, false, true);

  ResumeJobRequest resume;
  resume.set_job_id(job->id());
  resume.set_checkpoint_id("nope");
  EXPECT_EQ(coordinator_->ResumeJob(resume).status().code(), absl::StatusCode::kNotFound);
  resume.clear_checkpoint_id();
  resume.set_epochs(3);
  auto resumed = coordinator_->ResumeJob(resume);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->state(), RUNNING);
  EXPECT_EQ(resumed->attempt(), 2);
  EXPECT_EQ(resumed->spec().schedule().epochs(), 3);
  auto a = Poll(w0)->assign();
  EXPECT_EQ(a.resume_checkpoint_id(), "e0002-s00000010");
  EXPECT_EQ(a.spec().schedule().epochs(), 3);
  // The old attempt's calls are refused; the new one's lr comes from the checkpoint.
  EXPECT_EQ(coordinator_->ReportEvaluation(Eval(w0, a0, VALID, 2, 3, 1), absl::ZeroDuration()).status().code(),
            absl::StatusCode::kAborted);
  auto d = coordinator_->ReportEvaluation(Eval(w0, a, VALID, 2, 3, 1), absl::ZeroDuration());
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->best());  // 3.0 is worse than the checkpoint's best 2.0.
  EXPECT_DOUBLE_EQ(d->lr(), 5.0 / 4.0);
  EXPECT_TRUE(ReadFile(*coordinator_->KeptCheckpointPath(job->id(), "e0002-s00000010")).ok());
  EXPECT_EQ(coordinator_->KeptCheckpointPath(job->id(), "x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Download(w0, job->id(), "").status().code(), absl::StatusCode::kInvalidArgument);
  // Workers download it whole; strangers get nothing.
  auto bytes = Download(w0, job->id(), "e0002-s00000010");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_TRUE(ParseCheckpoint(*bytes, "download").ok());
  WorkerRef stranger;
  stranger.set_worker_id("nobody");
  stranger.set_incarnation(1);
  EXPECT_EQ(Download(stranger, job->id(), "e0002-s00000010").status().code(), absl::StatusCode::kNotFound);
  // Nor does a registered worker that runs none of this job's attempts.
  WorkerRef idle = AddWorker("idle");
  EXPECT_EQ(Download(idle, job->id(), "e0002-s00000010").status().code(), absl::StatusCode::kAborted);
  auto other = coordinator_->SubmitJob(Spec(1));
  ASSERT_EQ(coordinator_->GetJob(other->id())->state(), RUNNING);  // On `idle`.
  EXPECT_EQ(Download(idle, job->id(), "e0002-s00000010").status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(CoordinatorTest, TheRendezvousStoreServesEachAttemptItsOwnKeysAndNamesBadArguments) {
  WorkerRef w = AddWorker("w0");
  WorkerRef idle = AddWorker("w9");
  auto job = coordinator_->SubmitJob(Spec(1));
  auto a = Poll(w)->assign();
  const std::string key = a.store_prefix() + "a";
  EXPECT_EQ(a.store_prefix(), job->id() + "/attempt-1/");
  ASSERT_TRUE(coordinator_->KeySet(w, key, "v").ok());
  EXPECT_EQ(*coordinator_->KeyGet(w, key), "v");
  EXPECT_TRUE(coordinator_->KeyWait(w, {key}, absl::ZeroDuration()).ok());
  EXPECT_EQ(coordinator_->KeySet(w, "", "v").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(coordinator_->KeyWait(w, {}, absl::Seconds(1)).code(), absl::StatusCode::kInvalidArgument);
  absl::Status long_wait = coordinator_->KeyWait(w, {key}, absl::Hours(2));
  EXPECT_EQ(long_wait.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(long_wait.message(), HasSubstr("timeout_ms"));
  // Another attempt's keys (another job's, or this job's next attempt) are not its own.
  for (const std::string& other : {std::string("job-9/attempt-1/a"), job->id() + "/attempt-2/a", std::string("k")}) {
    EXPECT_EQ(coordinator_->KeySet(w, other, "v").code(), absl::StatusCode::kPermissionDenied) << other;
    EXPECT_EQ(coordinator_->KeyGet(w, other).status().code(), absl::StatusCode::kPermissionDenied) << other;
    EXPECT_EQ(coordinator_->KeyWait(w, {key, other}, absl::ZeroDuration()).code(), absl::StatusCode::kPermissionDenied)
        << other;
  }
  // Bounded: value size and key count.
  EXPECT_EQ(coordinator_->KeySet(w, key, std::string((64 << 10) + 1, 'x')).code(),
            absl::StatusCode::kResourceExhausted);
  absl::Status s;
  for (int i = 0; s.ok() && i < 5000; ++i) s = coordinator_->KeySet(w, key + std::to_string(i), "v");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  // Workers in no attempt, strangers and stale incarnations get nothing.
  EXPECT_EQ(coordinator_->KeyGet(idle, key).status().code(), absl::StatusCode::kAborted);
  WorkerRef stranger;
  stranger.set_worker_id("nobody");
  stranger.set_incarnation(1);
  EXPECT_EQ(coordinator_->KeySet(stranger, key, "v").code(), absl::StatusCode::kNotFound);
  AddWorker("w0", /*incarnation=*/2);
  EXPECT_EQ(coordinator_->KeyGet(w, key).status().code(), absl::StatusCode::kAborted);
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

TEST_F(CoordinatorTest, DeregisteredWorkerFailsItsJobAndTakesNoMore) {
  WorkerRef w0 = AddWorker("w0");
  WorkerRef w1 = AddWorker("w1");
  auto job = coordinator_->SubmitJob(Spec(2));
  auto a0 = Poll(w0)->assign();
  auto a1 = Poll(w1)->assign();
  ASSERT_TRUE(coordinator_->Deregister(w1).ok());
  EXPECT_EQ(coordinator_->Heartbeat(w1).code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(Poll(w0)->has_cancel());
  Finish(w0, a0, false, true);
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), FAILED);
  EXPECT_THAT(now.message(), HasSubstr("'w1' (rank 1) shut down"));
  // Only w0 is left: a 2-worker job waits.
  auto next = coordinator_->SubmitJob(Spec(2));
  EXPECT_EQ(coordinator_->GetJob(next->id())->state(), QUEUED);
  (void)a1;
}

TEST_F(CoordinatorTest, ReportEvaluationNamesABadArgumentBeforeLookingForItsAttempt) {
  WorkerRef w0 = AddWorker("w0");
  auto job = coordinator_->SubmitJob(Spec(1));
  ASSERT_TRUE(job.ok()) << job.status();
  auto c = Poll(w0);
  ASSERT_TRUE(c && c->has_assign());
  const Assignment a0 = c->assign();
  auto refused = [&](ReportEvaluationRequest r, const std::string& field) {
    absl::Status s = coordinator_->ReportEvaluation(r, absl::ZeroDuration()).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(field));
  };
  refused(Eval(w0, a0, TRAIN, 1, 1, 10), "split");
  refused(Eval(w0, a0, VALID, 1, 1, 0), "tokens");
  refused(Eval(w0, a0, VALID, 1, 1, int64_t{1} << 60), "tokens");
  refused(Eval(w0, a0, VALID, 1, std::nan(""), 10), "loss_sum");
  refused(Eval(w0, a0, VALID, 1, -1, 10), "loss_sum");
  ReportEvaluationRequest stranger = Eval(w0, a0, TRAIN, 1, 1, 10);
  stranger.mutable_attempt()->set_job_id("job-99");
  refused(stranger, "split");  // Checked first: the split is named, not the unknown job...
  EXPECT_EQ(coordinator_->ReportEvaluation(Eval(w0, a0, VALID, 1, 1, 10), absl::ZeroDuration()).status().code(),
            absl::StatusCode::kOk);  // ...and a good report of a 1-rank attempt is decided at once.
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

TEST_F(CoordinatorTest, AFailedAttemptRestartsFromTheLatestCheckpointUntilMaxRestarts) {
  WorkerRef w0 = AddWorker("w0");
  WorkerRef w1 = AddWorker("w1");
  JobSpec spec = Spec(2, 3);
  spec.set_max_restarts(2);
  spec.mutable_checkpoint()->set_keep_last(3);
  auto job = coordinator_->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  auto a0 = Poll(w0)->assign();
  auto a1 = Poll(w1)->assign();
  // Epoch 1 ends, best, and is checkpointed; then a mid-epoch checkpoint at step 15.
  EvalBoth(w0, a0, w1, a1, VALID, 1, 100, 300);  // Loss 1.0.
  const double lr = spec.optimizer().lr();
  ASSERT_TRUE(Upload(w0, a0.attempt(), CheckpointBytes(spec, 2, 10, lr, 1.0, 1.0)).ok());
  ASSERT_TRUE(Upload(w0, a0.attempt(), CheckpointBytes(spec, 2, 15, lr, 0, 1.0, /*batch=*/5)).ok());

  // w1 dies: w0 is told to stop, and once it has, the job is queued again from the
  // latest checkpoint, saying why.
  OutliveOthers(w0);
  ASSERT_TRUE(Poll(w0)->has_cancel());
  EXPECT_EQ(coordinator_->GetJob(job->id())->state(), RUNNING);  // Until every rank stopped.
  Finish(w0, a0, false, true);
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), QUEUED);
  EXPECT_EQ(now.restarts(), 1);
  EXPECT_EQ(now.resumed_from(), "e0002-s00000015");
  EXPECT_THAT(now.message(), HasSubstr("waiting for 2 free worker(s)"));  // Only w0 is left.
  const JobEvent restart = Events(job->id()).back();
  ASSERT_TRUE(restart.has_state());
  EXPECT_EQ(restart.state().state(), QUEUED);
  EXPECT_EQ(restart.state().restart(), 1);
  EXPECT_THAT(restart.state().message(), HasSubstr("restart 1 of 2: attempt 1 failed"));
  EXPECT_THAT(restart.state().message(), HasSubstr("'w1' (rank 1) stopped heartbeating"));
  EXPECT_THAT(restart.state().message(), HasSubstr("resuming from checkpoint e0002-s00000015"));

  // A replacement registers: attempt 2 resumes from step 15, with epoch 1's best
  // weights for the test, and the learning rate and best loss of that point.
  WorkerRef w2 = AddWorker("w2");
  now = *coordinator_->GetJob(job->id());
  ASSERT_EQ(now.state(), RUNNING);
  EXPECT_EQ(now.attempt(), 2);
  auto b0 = Poll(w0)->assign();
  auto b1 = Poll(w2)->assign();
  EXPECT_EQ(b0.resume_checkpoint_id(), "e0002-s00000015");
  EXPECT_EQ(b1.resume_checkpoint_id(), "e0002-s00000015");
  EXPECT_EQ(b0.best_checkpoint_id(), "e0002-s00000010");
  EvaluationDecision d = EvalBoth(w0, b0, w2, b1, VALID, 2, 200, 600);  // Loss 2.0: not best.
  EXPECT_FALSE(d.best());
  EXPECT_DOUBLE_EQ(d.lr(), lr / 4);

  // A rank's error is a failure too: restart 2.
  Finish(w2, b1, /*ok=*/false);
  ASSERT_TRUE(Poll(w0)->has_cancel());
  Finish(w0, b0, false, true);
  now = *coordinator_->GetJob(job->id());
  ASSERT_EQ(now.state(), RUNNING);  // Both workers were free: restarted at once.
  EXPECT_EQ(now.attempt(), 3);
  EXPECT_EQ(now.restarts(), 2);
  auto c0 = Poll(w0)->assign();
  auto c1 = Poll(w2)->assign();
  EXPECT_EQ(c0.resume_checkpoint_id(), "e0002-s00000015");  // Nothing newer was kept.

  // The restarts are spent: the next failure fails the job with its reason.
  Finish(w0, c0, /*ok=*/false);
  Poll(w2);
  Finish(w2, c1, false, true);
  now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), FAILED);
  EXPECT_THAT(now.message(), HasSubstr("rank 0 (worker 'w0') failed: boom"));
  EXPECT_THAT(now.message(), HasSubstr("after 2 automatic restart(s); spec.max_restarts is 2"));
  int restarts = 0;
  for (const JobEvent& e : Events(job->id())) restarts += e.has_state() && e.state().restart() > 0;
  EXPECT_EQ(restarts, 2);

  // A resume by hand counts the restarts afresh.
  ResumeJobRequest resume;
  resume.set_job_id(job->id());
  auto resumed = coordinator_->ResumeJob(resume);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->restarts(), 0);
}

TEST_F(CoordinatorTest, ACoordinatorRestartRestartsRunningJobsFromTheirLatestCheckpoint) {
  WorkerRef w0 = AddWorker("w0");
  JobSpec spec = Spec(1, 3);
  spec.set_max_restarts(1);
  spec.mutable_checkpoint()->set_keep_last(3);
  auto job = coordinator_->SubmitJob(spec);
  auto a0 = Poll(w0)->assign();
  auto d = coordinator_->ReportEvaluation(Eval(w0, a0, VALID, 1, 100, 100), absl::ZeroDuration());
  ASSERT_TRUE(d.ok()) << d.status();
  const double lr = spec.optimizer().lr();
  ASSERT_TRUE(Upload(w0, a0.attempt(), CheckpointBytes(spec, 2, 10, lr, 1.0, 1.0)).ok());
  ASSERT_TRUE(Upload(w0, a0.attempt(), CheckpointBytes(spec, 2, 12, lr, 0, 1.0, /*batch=*/2)).ok());

  // The coordinator dies mid-attempt and comes back on the same state directory.
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), QUEUED);
  EXPECT_EQ(now.restarts(), 1);
  EXPECT_EQ(now.resumed_from(), "e0002-s00000012");
  EXPECT_THAT(Events(job->id()).back().state().message(), HasSubstr("the coordinator restarted during attempt 1"));
  // Once more while it is still queued: it stays queued, from the same point.
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), QUEUED);
  EXPECT_EQ(now.restarts(), 1);

  // The worker registers again (a new incarnation): attempt 2 resumes, with the best
  // weights and the learning rate of that point.
  WorkerRef again = AddWorker("w0", 2);
  now = *coordinator_->GetJob(job->id());
  ASSERT_EQ(now.state(), RUNNING);
  EXPECT_EQ(now.attempt(), 2);
  auto a1 = Poll(again)->assign();
  EXPECT_EQ(a1.resume_checkpoint_id(), "e0002-s00000012");
  EXPECT_EQ(a1.best_checkpoint_id(), "e0002-s00000010");
  d = coordinator_->ReportEvaluation(Eval(again, a1, VALID, 2, 50, 100), absl::ZeroDuration());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->best());
  EXPECT_DOUBLE_EQ(d->lr(), lr);

  // Its restarts spent, the next coordinator restart fails the job, resumable.
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), FAILED);
  EXPECT_THAT(now.message(), HasSubstr("the coordinator restarted during attempt 2"));
}

TEST_F(CoordinatorTest, ADamagedJobRecordIsSetAsideAndTheOthersServe) {
  auto first = coordinator_->SubmitJob(Spec(1));
  auto second = coordinator_->SubmitJob(Spec(1));
  ASSERT_TRUE(first.ok() && second.ok());
  coordinator_.reset();
  const std::string path = options_.state_dir + "/jobs/" + first->id() + "/job.pb";
  ASSERT_TRUE(WriteFileAtomically(path, "not a record").ok());
  auto restarted = Coordinator::Create(options_, &clock_);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  coordinator_ = *std::move(restarted);
  EXPECT_EQ(coordinator_->GetJob(first->id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->GetJob(second->id())->state(), QUEUED);
  // Moved, whole, to damaged/ (JobStoreTest checks the report).
  const std::vector<std::string> damaged = ListDirectory(options_.state_dir + "/damaged");
  ASSERT_EQ(damaged.size(), 1u);
  EXPECT_EQ(*ReadFile(options_.state_dir + "/damaged/" + damaged[0] + "/job.pb"), "not a record");
  // New jobs never take a set-aside job's id.
  coordinator_.reset();
  ASSERT_TRUE(WriteFileAtomically(options_.state_dir + "/jobs/" + second->id() + "/job.pb", "x").ok());
  coordinator_ = *Coordinator::Create(options_, &clock_);
  EXPECT_TRUE(coordinator_->ListJobs().empty());
  EXPECT_EQ(coordinator_->SubmitJob(Spec(1))->id(), "job-3");
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

// A checkpoint of a real model for `spec` over `assignment`'s vocabulary, its weights
// drawn with `seed`.
std::string RealCheckpoint(const JobSpec& spec, const Assignment& assignment, int epoch, int64_t step, double val_loss,
                           double best, uint64_t seed) {
  torch::manual_seed(seed);
  std::shared_ptr<LanguageModelImpl> model = *BuildModel(spec.model(), assignment.vocabulary_size());
  Checkpoint c;
  *c.header.mutable_spec() = spec;
  c.header.mutable_position()->set_epoch(epoch);
  c.header.mutable_position()->set_global_step(step);
  c.header.set_lr(spec.optimizer().lr());
  c.header.set_val_loss(val_loss);
  c.header.set_best_val_loss(best);
  for (const std::string& w : assignment.vocabulary()) c.header.add_vocabulary(w);
  c.header.set_vocabulary_fingerprint(
      Dictionary::FromWords({assignment.vocabulary().begin(), assignment.vocabulary().end()}).Fingerprint());
  CaptureModel(*model, nullptr, &c);
  return *SerializeCheckpoint(c);
}

TEST_F(CoordinatorTest, GenerateSamplesFromTheBestCheckpointUnlessAskedOtherwise) {
  WorkerRef w0 = AddWorker("w0");
  JobSpec spec = Spec(1, 3);
  spec.mutable_checkpoint()->set_keep_last(3);
  auto job = coordinator_->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  const Assignment a = Poll(w0)->assign();
  // Epoch 1 is the best (loss 1.0); epoch 2 (2.0) is the latest.
  ASSERT_TRUE(Upload(w0, a.attempt(), RealCheckpoint(spec, a, 2, 10, 1.0, 1.0, 1)).ok());
  ASSERT_TRUE(Upload(w0, a.attempt(), RealCheckpoint(spec, a, 3, 20, 2.0, 1.0, 2)).ok());

  GenerateRequest request;
  request.set_job_id(job->id());
  request.set_words(25);
  auto best = coordinator_->Generate(request);
  ASSERT_TRUE(best.ok()) << best.status();
  EXPECT_EQ(best->checkpoint_id(), "e0002-s00000010");
  // 25 words, a newline after the 20th, as generate.py writes them.
  EXPECT_EQ(std::count(best->text().begin(), best->text().end(), '\n'), 1);
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(best->text(), absl::ByAnyChar(" \n"), absl::SkipEmpty())).size(),
            25u);
  // The same seed samples the same text; "latest" names the other checkpoint.
  EXPECT_EQ(coordinator_->Generate(request)->text(), best->text());
  request.set_checkpoint("latest");
  auto latest = coordinator_->Generate(request);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->checkpoint_id(), "e0003-s00000020");
  EXPECT_NE(latest->text(), best->text());
  request.set_checkpoint("e0002-s00000010");
  EXPECT_EQ(coordinator_->Generate(request)->text(), best->text());
  request.set_checkpoint("nope");
  EXPECT_EQ(coordinator_->Generate(request).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

TEST_F(CoordinatorTest, AnUploadWhoseAttemptEndsWhileItsFileMovesIsUndone) {
  // The file is renamed into place without the coordinator's lock; the attempt fails
  // right then (its rank reports a failure from the hook).
  std::function<void()> during_rename;
  options_.after_checkpoint_rename_for_testing = [&]() {
    if (during_rename) std::exchange(during_rename, nullptr)();
  };
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  WorkerRef w0 = AddWorker("w0");
  JobSpec spec = Spec(1, 3);
  spec.set_max_restarts(2);
  auto job = coordinator_->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  auto a = Poll(w0)->assign();
  const double lr = job->spec().optimizer().lr();
  auto kept = Upload(w0, a.attempt(), CheckpointBytes(Spec(1), 2, 10, lr, 2.0, 2.0));
  ASSERT_TRUE(kept.ok()) << kept.status();
  const std::string dir = options_.state_dir + "/jobs/" + job->id() + "/checkpoints";
  const std::string kept_bytes = *ReadFile(dir + "/" + kept->id() + ".ckpt");

  // The same id again (as a resumed attempt writes it), with other contents.
  during_rename = [&]() { Finish(w0, a, /*ok=*/false); };
  auto late = Upload(w0, a.attempt(), CheckpointBytes(Spec(1), 2, 10, lr, 3.0, 2.0));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(*ReadFile(dir + "/" + kept->id() + ".ckpt") == kept_bytes) << "the kept file was not put back";
  auto listed = coordinator_->ListCheckpoints(job->id());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_DOUBLE_EQ((*listed)[0].val_loss(), 2.0);
  EXPECT_EQ(ListDirectory(dir), std::vector<std::string>{kept->id() + ".ckpt"});  // Nothing stray.

  // A new id: removed again.
  Job restarted = *coordinator_->GetJob(job->id());
  ASSERT_EQ(restarted.attempt(), 2) << restarted.message();
  auto b = Poll(w0)->assign();
  ASSERT_EQ(b.attempt().attempt(), 2);
  during_rename = [&]() { Finish(w0, b, /*ok=*/false); };
  auto lost = Upload(w0, b.attempt(), CheckpointBytes(Spec(1), 3, 20, lr, 1.0, 1.0));
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ListDirectory(dir), std::vector<std::string>{kept->id() + ".ckpt"});
  EXPECT_EQ(coordinator_->ListCheckpoints(job->id())->size(), 1u);
}

TEST_F(CoordinatorTest, DeleteJobRemovesAFinishedJobAndItsFilesAndNeverReusesItsId) {
  WorkerRef w0 = AddWorker("w0");
  auto job = coordinator_->SubmitJob(Spec(1, 1));
  ASSERT_TRUE(job.ok());
  auto a = Poll(w0)->assign();
  ASSERT_TRUE(Upload(w0, a.attempt(), CheckpointBytes(Spec(1), 2, 10, 5.0, 2.0, 2.0)).ok());
  // Not while it runs.
  absl::Status running = coordinator_->DeleteJob(job->id());
  EXPECT_EQ(running.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(running.message(), HasSubstr("cancel it"));
  ASSERT_TRUE(coordinator_->CancelJob(job->id()).ok());
  Poll(w0);
  Finish(w0, a, false, true);
  auto other = coordinator_->SubmitJob(Spec(2));  // Queued: stays.
  ASSERT_TRUE(other.ok());

  const std::string dir = options_.state_dir + "/jobs/" + job->id();
  ASSERT_TRUE(ReadFile(dir + "/job.pb").ok());
  ASSERT_TRUE(coordinator_->DeleteJob(job->id()).ok());
  EXPECT_EQ(coordinator_->GetJob(job->id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->DeleteJob(job->id()).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadFile(dir + "/job.pb").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadFile(dir + "/checkpoints/e0002-s00000010.ckpt").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(coordinator_->ListJobs().size(), 1u);

  // The queued job too, once cancelled; then, after a restart, ids go on from job-3.
  ASSERT_TRUE(coordinator_->CancelJob(other->id()).ok());
  ASSERT_TRUE(coordinator_->DeleteJob(other->id()).ok());
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  EXPECT_TRUE(coordinator_->ListJobs().empty());
  EXPECT_EQ(coordinator_->SubmitJob(Spec(1))->id(), "job-3");
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

TEST_F(CoordinatorTest, WithMinWorkersARestartGoesOnWithFewerFromAnEpochEnd) {
  WorkerRef w0 = AddWorker("w0");
  WorkerRef w1 = AddWorker("w1");
  JobSpec spec = Spec(2, 3);
  spec.set_max_restarts(2);
  spec.set_min_workers(1);
  spec.mutable_checkpoint()->set_keep_last(3);
  auto job = coordinator_->SubmitJob(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  auto a0 = Poll(w0)->assign();
  auto a1 = Poll(w1)->assign();
  EvalBoth(w0, a0, w1, a1, VALID, 1, 100, 300);
  const double lr = spec.optimizer().lr();
  ASSERT_TRUE(Upload(w0, a0.attempt(), CheckpointBytes(spec, 2, 10, lr, 1.0, 1.0)).ok());
  ASSERT_TRUE(Upload(w0, a0.attempt(), CheckpointBytes(spec, 2, 15, lr, 0, 1.0, /*batch=*/5)).ok());
  EXPECT_EQ(coordinator_->ListCheckpoints(job->id())->back().world_size(), 2);

  // w1 is gone for good: only one worker is left, so the job goes on with one, from the
  // epoch end (the step-15 checkpoint holds two ranks' recurrent state).
  OutliveOthers(w0);
  ASSERT_TRUE(Poll(w0)->has_cancel());
  Finish(w0, a0, false, true);
  Job now = *coordinator_->GetJob(job->id());
  ASSERT_EQ(now.state(), RUNNING);
  EXPECT_EQ(now.spec().num_workers(), 1);
  EXPECT_EQ(now.workers_size(), 1);
  EXPECT_THAT(now.message(), HasSubstr("on 1 worker(s) instead of 2"));
  EXPECT_THAT(now.message(), HasSubstr("resharded from epoch-end checkpoint e0002-s00000010"));
  EXPECT_THAT(now.message(), HasSubstr("not bit-identical"));
  auto b = Poll(w0)->assign();
  EXPECT_EQ(b.world_size(), 1);
  EXPECT_EQ(b.spec().num_workers(), 1);
  EXPECT_EQ(b.resume_checkpoint_id(), "e0002-s00000010");
  EXPECT_EQ(b.best_checkpoint_id(), "e0002-s00000010");
  EXPECT_GT(b.train_tokens(), a0.train_tokens() * 3 / 2);  // About the whole corpus on one rank.
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

TEST_F(CoordinatorTest, AFullDiskFailsTheJobNamingThePathAndLosesNothingWrittenBefore) {
  WorkerRef w0 = AddWorker("w0");
  JobSpec spec = Spec(1, 3);
  spec.set_max_restarts(3);  // Not for this: a record that cannot be saved is not retried.
  auto job = coordinator_->SubmitJob(spec);
  ASSERT_TRUE(job.ok());
  auto a = Poll(w0)->assign();
  ASSERT_TRUE(Upload(w0, a.attempt(), CheckpointBytes(spec, 2, 10, 20, 1.0, 1.0)).ok());
  const std::string dir = options_.state_dir + "/jobs/" + job->id();
  const std::string kept = *ReadFile(dir + "/checkpoints/e0002-s00000010.ckpt");
  const int64_t events_before = coordinator_->GetJob(job->id())->last_event_sequence();

  // The disk fills up: no file may grow more than a few bytes.
  signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit full = old;
  full.rlim_cur = static_cast<rlim_t>(ReadFile(dir + "/events.log")->size() + 16);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &full), 0);
  ReportMetricsRequest m;
  *m.mutable_worker() = w0;
  *m.mutable_attempt() = a.attempt();
  m.mutable_metrics()->set_epoch(2);
  m.mutable_metrics()->set_batch(5);
  m.mutable_metrics()->set_loss(3.0);
  absl::Status refused = coordinator_->ReportMetrics(m);
  EXPECT_FALSE(refused.ok());
  EXPECT_THAT(refused.message(), HasSubstr(dir + "/events.log"));
  // The job's rank is told to stop; the coordinator goes on serving.
  auto cancel = Poll(w0);
  ASSERT_TRUE(cancel && cancel->has_cancel());
  EXPECT_TRUE(coordinator_->Heartbeat(w0).ok());
  EXPECT_EQ(coordinator_->ListJobs().size(), 1u);
  FinishAssignmentRequest finish;
  *finish.mutable_worker() = w0;
  *finish.mutable_attempt() = a.attempt();
  finish.set_cancelled(true);
  (void)coordinator_->FinishAssignment(finish);  // Its own record write may fail too.
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  Job now = *coordinator_->GetJob(job->id());
  EXPECT_EQ(now.state(), FAILED);  // Not restarted.
  EXPECT_THAT(now.message(), HasSubstr("cannot save the job's record"));
  EXPECT_THAT(now.message(), HasSubstr(dir + "/events.log"));
  EXPECT_EQ(now.restarts(), 0);
  EXPECT_EQ(coordinator_->ListWorkers()[0].state(), IDLE);

  // Nothing written before is lost or damaged: after a restart the job loads whole
  // (not set aside), with every event it had before the disk filled, and its checkpoint.
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  EXPECT_TRUE(ListDirectory(options_.state_dir + "/damaged").empty());
  auto reloaded = coordinator_->GetJob(job->id());
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_GE(reloaded->last_event_sequence(), events_before);
  EXPECT_EQ(*ReadFile(dir + "/checkpoints/e0002-s00000010.ckpt"), kept);
  ASSERT_EQ(coordinator_->ListCheckpoints(job->id())->size(), 1u);
  EXPECT_TRUE(coordinator_->SubmitJob(Spec(1)).ok());
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

TEST_F(CoordinatorTest, WatchersGetAnEventOnlyOnceItIsOnDiskAndAnAttemptsKeysCloseWithIt) {
  FakeSink<JobEvent>* watching = nullptr;
  std::vector<size_t> seen_at_write;  // What the watcher had when each write began.
  options_.before_record_write_for_testing = [&] {
    if (watching != nullptr) seen_at_write.push_back(watching->items.size());
  };
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  WorkerRef w0 = AddWorker("w0");
  auto job = coordinator_->SubmitJob(Spec(1));
  auto a = Poll(w0)->assign();
  FakeSink<JobEvent> sink;
  ASSERT_TRUE(coordinator_->AttachEventStream(job->id(), 0, &sink).ok());
  const size_t backlog = sink.items.size();  // PREPARING, QUEUED, RUNNING.
  EXPECT_EQ(backlog, 3u);
  watching = &sink;
  ReportMetricsRequest m;
  *m.mutable_worker() = w0;
  *m.mutable_attempt() = a.attempt();
  m.mutable_metrics()->set_epoch(1);
  ASSERT_TRUE(coordinator_->ReportMetrics(m).ok());
  ASSERT_FALSE(seen_at_write.empty());
  EXPECT_EQ(seen_at_write.back(), backlog);   // Not while its write was pending...
  ASSERT_EQ(sink.items.size(), backlog + 1);  // ...but as soon as it was done.
  EXPECT_TRUE(sink.items.back().has_training());
  watching = nullptr;

  // The attempt's rendezvous keys live while it runs; once it ended, not even its rank
  // reads them (they are erased, EndAttemptLocked).
  const std::string key = a.store_prefix() + "device/0";
  ASSERT_TRUE(coordinator_->KeySet(w0, key, "cpu").ok());
  EXPECT_EQ(*coordinator_->KeyGet(w0, key), "cpu");
  ASSERT_TRUE(coordinator_->CancelJob(job->id()).ok());
  Poll(w0);
  Finish(w0, a, false, true);
  EXPECT_EQ(coordinator_->KeyGet(w0, key).status().code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(sink.closed.has_value());  // After the CANCELLED event.
  EXPECT_EQ(sink.items.back().state().state(), CANCELLED);
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

TEST_F(CoordinatorTest, AnUploadIsCheckedBeforeItIsReadAndBoundedByTheJobsModel) {
  WorkerRef w0 = AddWorker("w0");
  WorkerRef w1 = AddWorker("w1");
  JobSpec spec = Spec(2);
  auto job = coordinator_->SubmitJob(spec);
  auto a0 = Poll(w0)->assign();
  auto a1 = Poll(w1)->assign();
  const std::string dir = options_.state_dir + "/jobs/" + job->id() + "/checkpoints";
  // Only rank 0 of the running attempt may start one; nothing is created otherwise.
  EXPECT_EQ(coordinator_->BeginUpload(w1, a1.attempt()).status().code(), absl::StatusCode::kInvalidArgument);
  WorkerRef stranger;
  stranger.set_worker_id("nobody");
  stranger.set_incarnation(1);
  EXPECT_EQ(coordinator_->BeginUpload(stranger, a0.attempt()).status().code(), absl::StatusCode::kNotFound);

  // A flood: refused once it passes what a checkpoint of this (tiny) model can weigh,
  // without ever holding it; its staging file goes with it.
  {
    auto upload = coordinator_->BeginUpload(w0, a0.attempt());
    ASSERT_TRUE(upload.ok()) << upload.status();
    const std::string megabyte(1 << 20, 'x');
    absl::Status s;
    int64_t sent = 0;
    while (s.ok() && sent < (int64_t{1} << 30)) {
      s = (*upload)->Append(megabyte);
      sent += megabyte.size();
    }
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(s.message(), HasSubstr("parameters"));
    EXPECT_LT(sent, int64_t{64} << 20);
  }
  EXPECT_TRUE(ListDirectory(dir).empty()) << ListDirectory(dir)[0];

  // A forged checkpoint: another model, or another vocabulary.
  JobSpec other = spec;
  other.mutable_model()->set_nhid(64);
  absl::Status forged = Upload(w0, a0.attempt(), CheckpointBytes(other, 2, 10, 20, 1, 1)).status();
  EXPECT_EQ(forged.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(forged.message(), HasSubstr("its model is not the job's"));
  vocabulary_.pop_back();
  forged = Upload(w0, a0.attempt(), CheckpointBytes(spec, 2, 10, 20, 1, 1)).status();
  EXPECT_EQ(forged.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(forged.message(), HasSubstr("vocabulary"));
  EXPECT_TRUE(coordinator_->ListCheckpoints(job->id())->empty());
  (void)a1;
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

TEST_F(CoordinatorTest, AnEvaluationWaitIsCappedWhateverTheCallersDeadline) {
  options_.max_evaluation_wait = absl::Milliseconds(20);
  coordinator_.reset();
  coordinator_ = *Coordinator::Create(options_, &clock_);
  WorkerRef w0 = AddWorker("w0");
  WorkerRef w1 = AddWorker("w1");
  auto job = coordinator_->SubmitJob(Spec(2));
  auto a0 = Poll(w0)->assign();
  auto a1 = Poll(w1)->assign();
  // Rank 1 never reports; rank 0 asks to wait forever and is answered anyway.
  auto d = coordinator_->ReportEvaluation(Eval(w0, a0, VALID, 1, 1, 10), absl::InfiniteDuration());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDeadlineExceeded);
  (void)a1;
}

}  // namespace
}  // namespace ddlm
