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

absl::StatusOr<std::shared_ptr<const JobCorpus>> ReadJobCorpus(const JobSpec& spec, const DataRoots& roots,
                                                               CorpusCache* cache) {
  DDLM_ASSIGN_OR_RETURN(std::string dir, roots.ResolveCorpusDir(spec.data().path()));
  CorpusCache uncached(0);  // Keeps nothing.
  DDLM_ASSIGN_OR_RETURN(std::shared_ptr<const JobCorpus> corpus, (cache != nullptr ? cache : &uncached)->Get(dir));
  DDLM_RETURN_IF_ERROR(CheckSplitSizes(spec, static_cast<int64_t>(corpus->train.size()),
                                       static_cast<int64_t>(corpus->valid.size()),
                                       static_cast<int64_t>(corpus->test.size())));
  return corpus;
}

absl::StatusOr<PreparedAttempt> PrepareAttempt(const JobSpec& spec, const JobCorpus& corpus, int world) {
  if (world < 1) return absl::InvalidArgumentError(absl::StrCat("an attempt needs >= 1 rank, got ", world));
  PreparedAttempt prepared;
  int64_t vocabulary_bytes = 0;
  for (const std::string& word : corpus.dictionary.words()) vocabulary_bytes += static_cast<int64_t>(word.size());
  prepared.vocabulary_size = corpus.dictionary.size();
  prepared.max_checkpoint_bytes = MaxCheckpointBytes(spec, corpus.dictionary.size(), vocabulary_bytes, world);
  for (int r = 0; r < world; ++r) {
    DDLM_ASSIGN_OR_RETURN(ShardRange train,
                          TrainShard(static_cast<int64_t>(corpus.train.size()), world, r, spec.data().batch_size()));
    DDLM_ASSIGN_OR_RETURN(ShardRange valid, EvalShard(static_cast<int64_t>(corpus.valid.size()), world, r));
    DDLM_ASSIGN_OR_RETURN(ShardRange test, EvalShard(static_cast<int64_t>(corpus.test.size()), world, r));
    RankShards& shards = prepared.shards.emplace_back();
    shards[0] = std::make_shared<const std::string>(EncodeTokenIds(corpus.train, train.begin, train.end));
    shards[1] = std::make_shared<const std::string>(EncodeTokenIds(corpus.valid, valid.begin, valid.end));
    shards[2] = std::make_shared<const std::string>(EncodeTokenIds(corpus.test, test.begin, test.end));
    Assignment& a = *prepared.commands.emplace_back().mutable_assign();
    a.mutable_attempt()->set_rank(r);
    a.set_world_size(world);
    *a.mutable_spec() = spec;
    for (const std::string& word : corpus.dictionary.words()) a.add_vocabulary(word);
    a.set_train_tokens(static_cast<int64_t>(shards[0]->size() / 4));
    a.set_valid_tokens(static_cast<int64_t>(shards[1]->size() / 4));
    a.set_test_tokens(static_cast<int64_t>(shards[2]->size() / 4));
  }
  return prepared;
}

}  // namespace ddlm
