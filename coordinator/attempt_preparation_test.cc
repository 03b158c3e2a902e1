#include "coordinator/attempt_preparation.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/base/file_io.h"
#include "common/base/sharding.h"
#include "common/training/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

// A corpus of its own: `lines` lines of 9 words (10 tokens with <eos>) per split.
std::string MakeCorpus(const std::string& name, int train_lines, int eval_lines) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  ::mkdir(dir.c_str(), 0755);
  auto text = [](int lines, int salt) {
    std::string s;
    for (int l = 0; l < lines; ++l) {
      for (int w = 0; w < 9; ++w) absl::StrAppend(&s, "w", (l * 7 + w * 3 + salt) % 23, " ");
      s += "\n";
    }
    return s;
  };
  EXPECT_TRUE(WriteFileAtomically(dir + "/train.txt", text(train_lines, 0)).ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/valid.txt", text(eval_lines, 1)).ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/test.txt", text(eval_lines, 2)).ok());
  return dir;
}

JobSpec Spec(const std::string& path, int workers) {
  JobSpec spec;
  spec.mutable_data()->set_path(path);
  spec.mutable_data()->set_batch_size(2);
  spec.mutable_data()->set_eval_batch_size(2);
  spec.mutable_model()->set_type(LSTM);
  spec.mutable_model()->set_emsize(4);
  spec.mutable_model()->set_nhid(4);
  spec.set_num_workers(workers);
  ApplyDefaults(&spec);
  return spec;
}

std::string CacheDir(const std::string& name) { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/cache-", name); }

TEST(AttemptPreparationTest, EachRankGetsItsShardsAndAssignmentAndTheShardsAreTheBytesOfAnInMemoryCut) {
  const std::string dir = MakeCorpus("ok", 30, 10);
  auto roots = DataRoots::Create({std::getenv("TEST_TMPDIR")});
  ASSERT_TRUE(roots.ok()) << roots.status();
  TokenCache cache(CacheDir("ok"));
  const JobSpec spec = Spec(dir, 2);
  auto corpus = ReadJobCorpus(spec, *roots, &cache);
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  EXPECT_EQ(corpus->key, *TokenCache::KeyOf(dir));
  const TokenCorpus& c = *corpus->corpus;
  EXPECT_EQ(c.train->tokens(), 300);
  EXPECT_EQ(c.valid->tokens(), 100);
  // The corpus as the coordinator held it before token files: read whole, in memory.
  auto in_memory = LoadCorpus(dir);
  ASSERT_TRUE(in_memory.ok()) << in_memory.status();
  EXPECT_EQ(c.dictionary.words(), in_memory->dictionary.words());

  auto prepared = PrepareAttempt(spec, *corpus, 2);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  ASSERT_EQ(prepared->shards.size(), 2u);
  ASSERT_EQ(prepared->commands.size(), 2u);
  int64_t vocabulary_bytes = 0;
  for (const std::string& w : c.dictionary.words()) vocabulary_bytes += static_cast<int64_t>(w.size());
  EXPECT_EQ(prepared->vocabulary_size, c.dictionary.size());
  EXPECT_EQ(prepared->max_checkpoint_bytes, MaxCheckpointBytes(spec, c.dictionary.size(), vocabulary_bytes, 2));
  for (int r = 0; r < 2; ++r) {
    // The shards are exactly the sharding's slices of each split, byte for byte what
    // EncodeTokenIds made of the in-memory corpus.
    auto train = TrainShard(300, 2, r, 2);
    auto valid = EvalShard(100, 2, r);
    auto test = EvalShard(100, 2, r);
    ASSERT_TRUE(train.ok() && valid.ok() && test.ok());
    const RankShards& shards = prepared->shards[r];
    EXPECT_EQ(shards[0].file().EncodeInt32(shards[0].begin, shards[0].end),
              EncodeTokenIds(in_memory->train, train->begin, train->end));
    EXPECT_EQ(shards[1].file().EncodeInt32(shards[1].begin, shards[1].end),
              EncodeTokenIds(in_memory->valid, valid->begin, valid->end));
    EXPECT_EQ(shards[2].file().EncodeInt32(shards[2].begin, shards[2].end),
              EncodeTokenIds(in_memory->test, test->begin, test->end));
    const Assignment& a = prepared->commands[r].assign();
    EXPECT_EQ(a.attempt().rank(), r);
    EXPECT_EQ(a.world_size(), 2);
    EXPECT_EQ(a.spec().data().path(), dir);
    EXPECT_EQ(static_cast<int64_t>(a.vocabulary().size()), c.dictionary.size());
    EXPECT_EQ(a.train_tokens(), train->end - train->begin);
    EXPECT_EQ(a.valid_tokens(), valid->end - valid->begin);
    EXPECT_EQ(a.test_tokens(), test->end - test->begin);
    ASSERT_EQ(a.shard_ids_size(), 3);
    EXPECT_EQ(a.shard_ids(0), ShardId(corpus->key, TRAIN, train->begin, train->end));
    EXPECT_EQ(a.shard_ids(2), ShardId(corpus->key, TEST, test->begin, test->end));
    // What only the attempt knows is left to it.
    EXPECT_TRUE(a.attempt().job_id().empty());
    EXPECT_EQ(a.attempt().attempt(), 0);
  }
  // Shard names differ by rank and split, and name the range.
  EXPECT_NE(prepared->commands[0].assign().shard_ids(0), prepared->commands[1].assign().shard_ids(0));
  EXPECT_NE(prepared->commands[0].assign().shard_ids(1), prepared->commands[0].assign().shard_ids(2));
}

TEST(AttemptPreparationTest, TooSmallASplitForTheRanksIsRefusedNamingIt) {
  const std::string dir = MakeCorpus("small", 30, 1);  // 10 valid and 10 test tokens.
  auto roots = DataRoots::Create({std::getenv("TEST_TMPDIR")});
  ASSERT_TRUE(roots.ok());
  TokenCache cache(CacheDir("small"));
  // 10 tokens over 3 ranks of eval batch 2 gives each rank one row: too few.
  auto corpus = ReadJobCorpus(Spec(dir, 3), *roots, &cache);
  ASSERT_EQ(corpus.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(corpus.status().message(), HasSubstr("valid.txt has 10 tokens, too few for 3 workers"));
  EXPECT_TRUE(ReadJobCorpus(Spec(dir, 2), *roots, &cache).ok());
}

TEST(AttemptPreparationTest, ACorpusOutsideTheRootsIsRefused) {
  const std::string dir = MakeCorpus("elsewhere", 30, 10);
  auto roots = DataRoots::Create({dir + "/.."});
  ASSERT_TRUE(roots.ok());
  ::mkdir(absl::StrCat(std::getenv("TEST_TMPDIR"), "/root").c_str(), 0755);
  auto narrow = DataRoots::Create({absl::StrCat(std::getenv("TEST_TMPDIR"), "/root")});
  ASSERT_TRUE(narrow.ok());
  TokenCache cache(CacheDir("elsewhere"));
  EXPECT_TRUE(ReadJobCorpus(Spec(dir, 1), *roots, &cache).ok());
  EXPECT_EQ(ReadJobCorpus(Spec(dir, 1), *narrow, &cache).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(AttemptPreparationTest, NoRanksIsInvalid) {
  const std::string dir = MakeCorpus("none", 30, 10);
  auto roots = DataRoots::Create({std::getenv("TEST_TMPDIR")});
  ASSERT_TRUE(roots.ok());
  TokenCache cache(CacheDir("none"));
  auto corpus = ReadJobCorpus(Spec(dir, 1), *roots, &cache);
  ASSERT_TRUE(corpus.ok());
  EXPECT_EQ(PrepareAttempt(Spec(dir, 1), *corpus, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ddlm
