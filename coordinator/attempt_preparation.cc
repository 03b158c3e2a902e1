#include "coordinator/attempt_preparation.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/checkpoint_format.h"
#include "common/base/sharding.h"
#include "common/base/status_macros.h"

namespace ddlm {
namespace {

// Every split must give each rank at least two rows (one bptt step).
absl::Status CheckSplitSizes(const JobSpec& spec, int64_t train, int64_t valid, int64_t test) {
  const int64_t w = spec.num_workers();
  const int64_t b = spec.data().batch_size();
  const int64_t eb = spec.data().eval_batch_size();
  if (w < 1 || b < 1 || eb < 1) {
    return absl::InvalidArgumentError(absl::StrCat("num_workers (", w, "), data.batch_size (", b,
                                                   ") and data.eval_batch_size (", eb, ") must be >= 1"));
  }
  if (train / (w * b) < 2) {
    return absl::FailedPreconditionError(absl::StrCat("data.path '", spec.data().path(), "': train.txt has ", train,
                                                      " tokens, too few for ", w, " workers x data.batch_size ", b,
                                                      " (need at least ", 2 * w * b, ")"));
  }
  for (auto [name, n] : {std::pair<const char*, int64_t>{"valid", valid}, {"test", test}}) {
    if (n / w / eb < 2) {
      return absl::FailedPreconditionError(absl::StrCat("data.path '", spec.data().path(), "': ", name, ".txt has ", n,
                                                        " tokens, too few for ", w, " workers x data.eval_batch_size ",
                                                        eb, " (need at least ", 2 * w * eb, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JobCorpus> ReadJobCorpus(const JobSpec& spec, const DataRoots& roots, TokenCache* cache,
                                        const TokenizeOptions& options) {
  DDLM_ASSIGN_OR_RETURN(std::string dir, roots.ResolveCorpusDir(spec.data().path()));
  DDLM_ASSIGN_OR_RETURN(TokenCache::Entry entry, cache->Get(dir, options));
  const TokenCorpus& c = *entry.corpus;
  DDLM_RETURN_IF_ERROR(CheckSplitSizes(spec, c.train->tokens(), c.valid->tokens(), c.test->tokens()));
  return JobCorpus{std::move(entry.key), std::move(entry.corpus)};
}

const TokenFile& ShardSource::file() const {
  return split == TRAIN ? *corpus->train : split == VALID ? *corpus->valid : *corpus->test;
}

std::string ShardId(const std::string& corpus_key, Split split, int64_t begin, int64_t end) {
  return absl::StrCat(corpus_key, "-",
                      split == TRAIN   ? "train"
                      : split == VALID ? "valid"
                                       : "test",
                      "-", begin, "-", end);
}

absl::StatusOr<PreparedAttempt> PrepareAttempt(const JobSpec& spec, const JobCorpus& corpus, int world) {
  if (world < 1) return absl::InvalidArgumentError(absl::StrCat("an attempt needs >= 1 rank, got ", world));
  const TokenCorpus& c = *corpus.corpus;
  PreparedAttempt prepared;
  int64_t vocabulary_bytes = 0;
  for (const std::string& word : c.dictionary.words()) vocabulary_bytes += static_cast<int64_t>(word.size());
  prepared.vocabulary_size = c.dictionary.size();
  prepared.max_checkpoint_bytes = MaxCheckpointBytes(spec, c.dictionary.size(), vocabulary_bytes, world);
  for (int r = 0; r < world; ++r) {
    DDLM_ASSIGN_OR_RETURN(ShardRange train, TrainShard(c.train->tokens(), world, r, spec.data().batch_size()));
    DDLM_ASSIGN_OR_RETURN(ShardRange valid, EvalShard(c.valid->tokens(), world, r));
    DDLM_ASSIGN_OR_RETURN(ShardRange test, EvalShard(c.test->tokens(), world, r));
    RankShards& shards = prepared.shards.emplace_back();
    shards[0] = ShardSource{corpus.corpus, TRAIN, train.begin, train.end};
    shards[1] = ShardSource{corpus.corpus, VALID, valid.begin, valid.end};
    shards[2] = ShardSource{corpus.corpus, TEST, test.begin, test.end};
    Assignment& a = *prepared.commands.emplace_back().mutable_assign();
    a.mutable_attempt()->set_rank(r);
    a.set_world_size(world);
    *a.mutable_spec() = spec;
    for (const std::string& word : c.dictionary.words()) a.add_vocabulary(word);
    a.set_train_tokens(shards[0].tokens());
    a.set_valid_tokens(shards[1].tokens());
    a.set_test_tokens(shards[2].tokens());
    for (const ShardSource& shard : shards) {
      a.add_shard_ids(ShardId(corpus.key, shard.split, shard.begin, shard.end));
    }
  }
  return prepared;
}

}  // namespace ddlm
