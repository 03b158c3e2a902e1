// JobRunner against a fake coordinator (no network): one rank, the real Trainer.

#include "worker/job_runner.h"

#include <cmath>

#include "absl/synchronization/mutex.h"
#include "common/checkpoint.h"
#include "common/config.h"
#include "common/corpus.h"
#include "common/file_io.h"
#include "common/sharding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/collectives/gloo_collective.h"

namespace ddlm {
namespace {

// Serves one rank from memory and records what the runner reports. Decisions follow
// main.py's rule so the runner sees realistic answers.
class FakeCoordinatorClient : public CoordinatorClient {
 public:
  explicit FakeCoordinatorClient(const Corpus& corpus) {
    shards_[TRAIN] = EncodeTokenIds(corpus.train, 0, corpus.train.size());
    shards_[VALID] = EncodeTokenIds(corpus.valid, 0, corpus.valid.size());
    shards_[TEST] = EncodeTokenIds(corpus.test, 0, corpus.test.size());
  }
  absl::StatusOr<RegisterResponse> Register(const RegisterRequest&) override { return RegisterResponse(); }
  absl::Status Heartbeat(const WorkerRef&) override { return absl::OkStatus(); }
  absl::Status Deregister(const WorkerRef&) override { return absl::OkStatus(); }
  std::unique_ptr<CommandStream> StreamCommands(const WorkerRef&) override { return nullptr; }
  absl::Status KeySet(const WorkerRef&, const std::string& k, const std::string& v) override {
    return kv_.Set(k, v);
  }
  absl::StatusOr<std::string> KeyGet(const WorkerRef&, const std::string& k) override { return kv_.Get(k); }
  absl::Status KeyWait(const WorkerRef&, const std::vector<std::string>& keys, absl::Duration t) override {
    return kv_.Wait(keys, t);
  }
  absl::StatusOr<std::string> DownloadShard(const DownloadShardRequest& r) override {
    return shards_[r.split()];
  }
  absl::StatusOr<std::string> DownloadCheckpoint(const DownloadCheckpointRequest& r) override {
    absl::MutexLock lock(&mu_);
    if (checkpoints_.count(r.checkpoint_id()) == 0) return absl::NotFoundError(r.checkpoint_id());
    return checkpoints_[r.checkpoint_id()];
  }
  absl::Status ReportMetrics(const ReportMetricsRequest& r) override {
    absl::MutexLock lock(&mu_);
    metrics_.push_back(r.metrics());
    return absl::OkStatus();
  }
  absl::StatusOr<EvaluationDecision> ReportEvaluation(const ReportEvaluationRequest& r,
                                                      absl::Duration) override {
    absl::MutexLock lock(&mu_);
    EvaluationDecision d;
    d.set_loss(r.loss_sum() / r.tokens());
    d.set_tokens(r.tokens());
    if (r.split() == VALID) {
      d.set_best(!best_ || d.loss() < *best_);
      if (d.best()) best_ = d.loss();
      else lr_ /= 4;
      d.set_lr(lr_);
      valid_.push_back(d.loss());
    } else {
      test_.push_back(d.loss());
    }
    return d;
  }
  absl::StatusOr<CheckpointInfo> UploadCheckpoint(const WorkerRef&, const AttemptRef&,
                                                  const std::string& bytes) override {
    absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(bytes, "upload");
    if (!parsed.ok()) return parsed.status();
    CheckpointInfo info;
    info.set_id(absl::StrCat("e", parsed->header.position().epoch(), "-s", parsed->header.position().global_step()));
    absl::MutexLock lock(&mu_);
    checkpoints_[info.id()] = bytes;
    order_.push_back(info.id());
    return info;
  }
  absl::Status FinishAssignment(const FinishAssignmentRequest&) override { return absl::OkStatus(); }
  // The coordinator's state as of an earlier checkpoint (what a resume restores).
  void RewindTo(double best, double lr) {
    absl::MutexLock lock(&mu_);
    best_ = best;
    lr_ = lr;
  }

  absl::Mutex mu_;
  std::map<int, std::string> shards_;
  InMemoryKeyValueStore kv_;
  std::vector<TrainingMetrics> metrics_;
  std::vector<double> valid_, test_;
  std::map<std::string, std::string> checkpoints_;
  std::vector<std::string> order_;
  std::optional<double> best_;
  double lr_ = 20;
};

Assignment MakeAssignment(const Corpus& corpus, int epochs) {
  Assignment a;
  a.mutable_attempt()->set_job_id("job-1");
  a.mutable_attempt()->set_attempt(1);
  a.set_world_size(1);
  a.set_store_prefix("job-1/attempt-1/");
  JobSpec& spec = *a.mutable_spec();
  spec.mutable_data()->set_path("unused");
  spec.mutable_data()->set_batch_size(10);
  spec.mutable_model()->set_emsize(16);
  spec.mutable_model()->set_nhid(16);
  spec.mutable_schedule()->set_epochs(epochs);
  spec.mutable_schedule()->set_max_batches_per_epoch(20);
  spec.mutable_schedule()->set_log_interval(5);
  spec.mutable_schedule()->set_threads(1);
  spec.mutable_checkpoint()->set_every_n_steps(25);
  ApplyDefaults(&spec);
  for (const std::string& w : corpus.dictionary.words()) a.add_vocabulary(w);
  return a;
}

JobRunner MakeRunner(const Assignment& a, FakeCoordinatorClient* client) {
  WorkerRef worker;
  worker.set_worker_id("w0");
  worker.set_incarnation(1);
  return JobRunner(a, worker, client, JobRunnerOptions(), CreateGlooCollective);
}

TEST(JobRunnerTest, TrainsValidatesCheckpointsAndTests) {
  absl::StatusOr<Corpus> corpus = LoadCorpus("configs/quickstart_data");
  ASSERT_TRUE(corpus.ok());
  FakeCoordinatorClient client(*corpus);
  JobRunner runner = MakeRunner(MakeAssignment(*corpus, 2), &client);
  ASSERT_TRUE(runner.Run().ok());
  EXPECT_EQ(client.valid_.size(), 2u);
  EXPECT_LT(client.valid_[1], client.valid_[0]);
  EXPECT_EQ(client.test_.size(), 1u);
  EXPECT_EQ(client.metrics_.size(), 2u * 3u);  // Batches 5, 10, 15 of each epoch.
  // Epoch ends (steps 20, 40) and step 25, in order; each parses and is complete.
  EXPECT_THAT(client.order_, ::testing::ElementsAre("e2-s20", "e2-s25", "e3-s40"));
  auto mid = ParseCheckpoint(client.checkpoints_["e2-s25"], "mid");
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->header.position().batch(), 5);
  EXPECT_TRUE(mid->tensors.count("hidden/0"));
}

TEST(JobRunnerTest, AResumedRunEndsBitIdenticalToAStraightOneAndStopsWhenAsked) {
  absl::StatusOr<Corpus> corpus = LoadCorpus("configs/quickstart_data");
  ASSERT_TRUE(corpus.ok());
  FakeCoordinatorClient client(*corpus);
  {
    JobRunner runner = MakeRunner(MakeAssignment(*corpus, 2), &client);
    ASSERT_TRUE(runner.Run().ok());
  }
  ASSERT_EQ(client.valid_.size(), 2u);
  ASSERT_LT(client.valid_[1], client.valid_[0]);  // Epoch 2 is the best.
  ASSERT_EQ(client.test_.size(), 1u);

  // Resume from step 25 (epoch 2, batch 5: mid-epoch, hidden state and generator in
  // the checkpoint), with the coordinator's decisions as they were at that point.
  client.RewindTo(/*best=*/client.valid_[0], /*lr=*/20);
  Assignment again = MakeAssignment(*corpus, 2);
  again.set_resume_checkpoint_id("e2-s25");
  again.set_best_checkpoint_id("e2-s20");
  again.mutable_attempt()->set_attempt(2);
  again.set_store_prefix("job-1/attempt-2/");
  {
    JobRunner resumed = MakeRunner(again, &client);
    ASSERT_TRUE(resumed.Run().ok());
  }
  ASSERT_EQ(client.valid_.size(), 3u);
  EXPECT_EQ(client.valid_[2], client.valid_[1]);
  ASSERT_EQ(client.test_.size(), 2u);
  EXPECT_EQ(client.test_[1], client.test_[0]);

  // Resume from the end: nothing left to train; the best weights come from the
  // checkpoint, and test exactly as before.
  Assignment end = again;
  end.set_resume_checkpoint_id("e3-s40");
  end.set_best_checkpoint_id("e3-s40");
  end.mutable_attempt()->set_attempt(3);
  end.set_store_prefix("job-1/attempt-3/");
  {
    JobRunner resumed = MakeRunner(end, &client);
    ASSERT_TRUE(resumed.Run().ok());
  }
  EXPECT_EQ(client.valid_.size(), 3u);
  ASSERT_EQ(client.test_.size(), 3u);
  EXPECT_EQ(client.test_[2], client.test_[0]);

  Assignment stopped = MakeAssignment(*corpus, 3);
  stopped.mutable_attempt()->set_attempt(4);
  stopped.set_store_prefix("job-1/attempt-4/");
  JobRunner runner = MakeRunner(stopped, &client);
  runner.RequestStop();
  EXPECT_EQ(runner.Run().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(client.valid_.size(), 3u);  // Stopped before any epoch ended.
}

TEST(JobRunnerTest, MissingResumeCheckpointIsAnError) {
  absl::StatusOr<Corpus> corpus = LoadCorpus("configs/quickstart_data");
  ASSERT_TRUE(corpus.ok());
  FakeCoordinatorClient client(*corpus);
  Assignment a = MakeAssignment(*corpus, 1);
  a.set_resume_checkpoint_id("nope");
  JobRunner runner = MakeRunner(a, &client);
  EXPECT_EQ(runner.Run().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ddlm
