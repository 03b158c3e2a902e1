// JobRunner against a fake coordinator (no network): one rank, the real Trainer.

#include "worker/job_runner.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/base/file_io.h"
#include "common/base/sharding.h"
#include "common/training/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/collectives/gloo_collective.h"
#include "worker/testing/fake_coordinator_client.h"

namespace ddlm {
namespace {

// The shared fake (worker/testing/) serving this corpus whole to one rank.
void ServeCorpus(const Corpus& corpus, FakeCoordinatorClient* client) {
  client->set_shard(TRAIN, EncodeTokenIds(corpus.train, 0, corpus.train.size()));
  client->set_shard(VALID, EncodeTokenIds(corpus.valid, 0, corpus.valid.size()));
  client->set_shard(TEST, EncodeTokenIds(corpus.test, 0, corpus.test.size()));
  client->SetValidationState(std::nullopt, /*lr=*/20);
}

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

JobRunner MakeRunner(const Assignment& a, FakeCoordinatorClient* client, JobRunnerOptions options = {}) {
  WorkerRef worker;
  worker.set_worker_id("w0");
  worker.set_incarnation(1);
  return JobRunner(a, worker, client, options, CreateGlooCollective);
}

TEST(JobRunnerTest, TrainsValidatesCheckpointsAndTests) {
  absl::StatusOr<Corpus> corpus = LoadCorpus("configs/quickstart_data");
  ASSERT_TRUE(corpus.ok());
  FakeCoordinatorClient client;
  ServeCorpus(*corpus, &client);
  JobRunner runner = MakeRunner(MakeAssignment(*corpus, 2), &client);
  ASSERT_TRUE(runner.Run().ok());
  const std::vector<double> valid = client.valid_losses();
  ASSERT_EQ(valid.size(), 2u);
  EXPECT_LT(valid[1], valid[0]);
  EXPECT_EQ(client.test_losses().size(), 1u);
  EXPECT_EQ(client.metrics().size(), 2u * 3u);  // Batches 5, 10, 15 of each epoch.
  // Epoch ends (steps 20, 40) and step 25, in order; each parses and is complete.
  EXPECT_THAT(client.uploads(), ::testing::ElementsAre("e2-s20", "e2-s25", "e3-s40"));
  auto mid = ParseCheckpoint(client.checkpoint("e2-s25"), "mid");
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->header.position().batch(), 5);
  EXPECT_TRUE(mid->tensors.count("hidden/0"));
}

TEST(JobRunnerTest, AResumedRunEndsBitIdenticalToAStraightOneAndStopsWhenAsked) {
  absl::StatusOr<Corpus> corpus = LoadCorpus("configs/quickstart_data");
  ASSERT_TRUE(corpus.ok());
  FakeCoordinatorClient client;
  ServeCorpus(*corpus, &client);
  {
    JobRunner runner = MakeRunner(MakeAssignment(*corpus, 2), &client);
    ASSERT_TRUE(runner.Run().ok());
  }
  ASSERT_EQ(client.valid_losses().size(), 2u);
  ASSERT_LT(client.valid_losses()[1], client.valid_losses()[0]);  // Epoch 2 is the best.
  ASSERT_EQ(client.test_losses().size(), 1u);

  // Resume from step 25 (epoch 2, batch 5: mid-epoch, hidden state and generator in
  // the checkpoint), with the coordinator's decisions as they were at that point.
  client.SetValidationState(/*best_loss=*/client.valid_losses()[0], /*lr=*/20);
  Assignment again = MakeAssignment(*corpus, 2);
  again.set_resume_checkpoint_id("e2-s25");
  again.set_best_checkpoint_id("e2-s20");
  again.mutable_attempt()->set_attempt(2);
  again.set_store_prefix("job-1/attempt-2/");
  {
    JobRunner resumed = MakeRunner(again, &client);
    ASSERT_TRUE(resumed.Run().ok());
  }
  ASSERT_EQ(client.valid_losses().size(), 3u);
  EXPECT_EQ(client.valid_losses()[2], client.valid_losses()[1]);
  ASSERT_EQ(client.test_losses().size(), 2u);
  EXPECT_EQ(client.test_losses()[1], client.test_losses()[0]);

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
  EXPECT_EQ(client.valid_losses().size(), 3u);
  ASSERT_EQ(client.test_losses().size(), 3u);
  EXPECT_EQ(client.test_losses()[2], client.test_losses()[0]);

  Assignment stopped = MakeAssignment(*corpus, 3);
  stopped.mutable_attempt()->set_attempt(4);
  stopped.set_store_prefix("job-1/attempt-4/");
  JobRunner runner = MakeRunner(stopped, &client);
  runner.RequestStop();
  EXPECT_EQ(runner.Run().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(client.valid_losses().size(), 3u);  // Stopped before any epoch ended.
}

TEST(JobRunnerTest, MappedShardsOnDiskTrainBitIdenticallyToShardsInMemoryAndAreNotDownloadedAgain) {
  absl::StatusOr<Corpus> corpus = LoadCorpus("configs/quickstart_data");
  ASSERT_TRUE(corpus.ok());
  FakeCoordinatorClient in_memory;
  ServeCorpus(*corpus, &in_memory);
  {
    JobRunner runner = MakeRunner(MakeAssignment(*corpus, 2), &in_memory);
    ASSERT_TRUE(runner.Run().ok());
  }

  JobRunnerOptions options;
  options.shard_store = std::make_shared<ShardStore>(absl::StrCat(std::getenv("TEST_TMPDIR"), "/shards"));
  Assignment a = MakeAssignment(*corpus, 2);
  for (const char* id : {"c-train-0-n", "c-valid-0-n", "c-test-0-n"}) a.add_shard_ids(id);
  a.set_train_tokens(static_cast<int64_t>(corpus->train.size()));
  a.set_valid_tokens(static_cast<int64_t>(corpus->valid.size()));
  a.set_test_tokens(static_cast<int64_t>(corpus->test.size()));
  FakeCoordinatorClient mapped;
  ServeCorpus(*corpus, &mapped);
  {
    JobRunner runner = MakeRunner(a, &mapped, options);
    ASSERT_TRUE(runner.Run().ok());
  }
  EXPECT_EQ(mapped.shard_downloads(), 3);
  EXPECT_EQ(mapped.valid_losses(), in_memory.valid_losses());  // Exactly.
  EXPECT_EQ(mapped.test_losses(), in_memory.test_losses());
  {
    // The same weights, state and generators (the header also records when it was written).
    auto a = ParseCheckpoint(mapped.checkpoint("e3-s40"), "mapped");
    auto b = ParseCheckpoint(in_memory.checkpoint("e3-s40"), "in memory");
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->tensors.size(), b->tensors.size());
    for (const auto& [name, tensor] : a->tensors) {
      ASSERT_EQ(b->tensors.count(name), 1u) << name;
      EXPECT_TRUE(torch::equal(tensor, b->tensors.at(name))) << name;
    }
  }
  EXPECT_THAT(ListDirectory(options.shard_store->dir()),
              ::testing::ElementsAre("c-test-0-n.ddlm-shard", "c-train-0-n.ddlm-shard", "c-valid-0-n.ddlm-shard"));

  // The next attempt (after a restart, say) on the same shards downloads none; one
  // whose train shard changed downloads that one, and the old one goes.
  a.mutable_attempt()->set_attempt(2);
  a.set_store_prefix("job-1/attempt-2/");
  mapped.SetValidationState(std::nullopt, /*lr=*/20);  // A fresh start.
  {
    JobRunner runner = MakeRunner(a, &mapped, options);
    ASSERT_TRUE(runner.Run().ok());
  }
  EXPECT_EQ(mapped.shard_downloads(), 3);
  EXPECT_EQ(mapped.test_losses().back(), in_memory.test_losses().back());
  a.set_shard_ids(0, "c2-train-0-n");
  a.mutable_attempt()->set_attempt(3);
  a.set_store_prefix("job-1/attempt-3/");
  {
    JobRunner runner = MakeRunner(a, &mapped, options);
    ASSERT_TRUE(runner.Run().ok());
  }
  EXPECT_EQ(mapped.shard_downloads(), 4);
  EXPECT_THAT(ListDirectory(options.shard_store->dir()),
              ::testing::ElementsAre("c-test-0-n.ddlm-shard", "c-valid-0-n.ddlm-shard", "c2-train-0-n.ddlm-shard"));
}

TEST(JobRunnerTest, AShardOfAnotherSizeThanAssignedFailsTheAttemptNamingIt) {
  absl::StatusOr<Corpus> corpus = LoadCorpus("configs/quickstart_data");
  ASSERT_TRUE(corpus.ok());
  FakeCoordinatorClient client;
  ServeCorpus(*corpus, &client);
  JobRunnerOptions options;
  options.shard_store = std::make_shared<ShardStore>(absl::StrCat(std::getenv("TEST_TMPDIR"), "/short"));
  Assignment a = MakeAssignment(*corpus, 1);
  for (const char* id : {"t", "v", "s"}) a.add_shard_ids(id);
  a.set_train_tokens(static_cast<int64_t>(corpus->train.size()) + 1);
  a.set_valid_tokens(static_cast<int64_t>(corpus->valid.size()));
  a.set_test_tokens(static_cast<int64_t>(corpus->test.size()));
  JobRunner runner = MakeRunner(a, &client, options);
  absl::Status s = runner.Run();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("shard t:"));
}

TEST(JobRunnerTest, MissingResumeCheckpointIsAnError) {
  absl::StatusOr<Corpus> corpus = LoadCorpus("configs/quickstart_data");
  ASSERT_TRUE(corpus.ok());
  FakeCoordinatorClient client;
  ServeCorpus(*corpus, &client);
  Assignment a = MakeAssignment(*corpus, 1);
  a.set_resume_checkpoint_id("nope");
  JobRunner runner = MakeRunner(a, &client);
  EXPECT_EQ(runner.Run().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ddlm
