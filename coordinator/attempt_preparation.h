#ifndef DDLM_COORDINATOR_ATTEMPT_PREPARATION_H_
#define DDLM_COORDINATOR_ATTEMPT_PREPARATION_H_

// What an attempt needs before its ranks can be assigned, and takes long to make: the
// job's corpus tokenized to disk once (the TokenCache in the state directory,
// token_cache.h; a coordinator that restarts finds it there) and each rank's shards, as
// ranges of its token files (common/base/sharding.h's rule), which DownloadShard
// streams from disk: the coordinator never holds a corpus or a shard in memory. The
// Coordinator calls these without its lock, on its preparer's thread: a corpus seen
// for the first time takes a while, and heartbeats, queries and other jobs go on
// meanwhile.
//
// Threading: free functions on values; the results are immutable and shared.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/data_roots.h"
#include "common/base/token_corpus.h"
#include "common/base/token_cache.h"
#include "proto/config.pb.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

// A job's corpus as the TokenCache holds it.
struct JobCorpus {
  std::string key;  // The cache's key: it names the corpus files as they are now.
  std::shared_ptr<const TokenCorpus> corpus;
};

// Resolves spec.data.path inside `roots` (PERMISSION_DENIED outside them, data_roots.h),
// gets its tokens from `cache` (tokenizing it if it is not there; `options.progress`
// follows that) and checks that every split gives each of spec.num_workers ranks at
// least two rows (FAILED_PRECONDITION naming the file and the sizes).
absl::StatusOr<JobCorpus> ReadJobCorpus(const JobSpec& spec, const DataRoots& roots, TokenCache* cache,
                                        const TokenizeOptions& options = {});

// One rank's piece of one split: tokens [begin, end) of the corpus's token file.
struct ShardSource {
  std::shared_ptr<const TokenCorpus> corpus;  // Keeps the file mapped.
  Split split = TRAIN;
  int64_t begin = 0, end = 0;
  const TokenFile& file() const;
  int64_t tokens() const { return end - begin; }
};
using RankShards = std::array<ShardSource, 3>;  // Train, valid, test (split - TRAIN).

// What a shard's bytes are, as a name: the corpus's key, the split and the range. Two
// shards with the same name have the same tokens (a worker that holds one does not
// download it again).
std::string ShardId(const std::string& corpus_key, Split split, int64_t begin, int64_t end);

struct PreparedAttempt {
  std::vector<RankShards> shards;  // By rank.
  // By rank: the Assignment (rank, world size, spec, vocabulary, shard sizes and ids),
  // less what only the attempt knows (job id, attempt number, resume ids, store prefix).
  std::vector<WorkerCommand> commands;
  int64_t max_checkpoint_bytes = 0;  // What a checkpoint of this job can weigh.
  int64_t vocabulary_size = 0;
};

// Cuts `corpus` for `world` ranks of `spec`.
absl::StatusOr<PreparedAttempt> PrepareAttempt(const JobSpec& spec, const JobCorpus& corpus, int world);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_ATTEMPT_PREPARATION_H_
