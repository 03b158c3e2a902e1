#ifndef DDLM_COORDINATOR_ATTEMPT_PREPARATION_H_
#define DDLM_COORDINATOR_ATTEMPT_PREPARATION_H_

// What an attempt needs before its ranks can be assigned, and takes long to make: the
// job's corpus read (through the data roots) and tokenized, or found unchanged in the
// CorpusCache (corpus_cache.h), cut into one shard per rank (common/base/sharding.h)
// and encoded, and each rank's Assignment. The Coordinator calls these without its
// lock, on its preparer's thread: for a large corpus they take seconds, and heartbeats,
// queries and other jobs go on meanwhile.
//
// Threading: free functions on values; the results are immutable and shared.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/data_roots.h"
#include "coordinator/corpus_cache.h"
#include "proto/config.pb.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

// Reads spec.data.path inside `roots` (PERMISSION_DENIED outside them, data_roots.h)
// and checks that every split gives each of spec.num_workers ranks at least two rows
// (FAILED_PRECONDITION naming the file and the sizes). Through `cache` if not null
// (not owned): unchanged files are not read again.
absl::StatusOr<std::shared_ptr<const JobCorpus>> ReadJobCorpus(const JobSpec& spec, const DataRoots& roots,
                                                               CorpusCache* cache = nullptr);

// One shard per rank and split: token ids, int32 little-endian.
using RankShards = std::array<std::shared_ptr<const std::string>, 3>;  // Train, valid, test (split - TRAIN).

struct PreparedAttempt {
  std::vector<RankShards> shards;  // By rank.
  // By rank: the Assignment (rank, world size, spec, vocabulary, shard sizes), less
  // what only the attempt knows (job id, attempt number, resume ids, store prefix).
  std::vector<WorkerCommand> commands;
  int64_t max_checkpoint_bytes = 0;  // What a checkpoint of this job can weigh.
  int64_t vocabulary_size = 0;
};

// Cuts `corpus` for `world` ranks of `spec`.
absl::StatusOr<PreparedAttempt> PrepareAttempt(const JobSpec& spec, const JobCorpus& corpus, int world);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_ATTEMPT_PREPARATION_H_
