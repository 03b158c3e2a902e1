#ifndef DDLM_COMMON_BASE_SHARDING_H_
#define DDLM_COMMON_BASE_SHARDING_H_

// How the coordinator splits a token stream over W data-parallel ranks.
//
// Training: Batchify with batch W*B cuts the stream into W*B contiguous columns of
// `rows` tokens each (rows = N / (W*B), the tail trimmed). Rank r gets columns
// [r*B, (r+1)*B), which are themselves one contiguous slice of B*rows tokens, and
// Batchify(slice, B) on the rank gives exactly those columns. So every rank has the
// same number of rows (the same number of bptt steps: no uneven-input hang), every
// column keeps its own stream for the hidden state, and W ranks with batch B train on
// the same batches as one worker with batch W*B.
//
// Evaluation: W equal contiguous slices of N / W tokens; each rank batchifies its own.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ddlm {

struct ShardRange {
  int64_t begin = 0;  // Token offsets into the split, [begin, end).
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

// INVALID_ARGUMENT unless 0 <= rank < world_size and batch >= 1.
absl::StatusOr<ShardRange> TrainShard(int64_t num_tokens, int world_size, int rank, int64_t batch);
absl::StatusOr<ShardRange> EvalShard(int64_t num_tokens, int world_size, int rank);

// A shard on the wire (WorkerService.DownloadShard): token ids as int32 little-endian.
std::string EncodeTokenIds(const std::vector<int64_t>& ids, int64_t begin, int64_t end);
// DATA_LOSS if the size is not a multiple of 4 or an id is negative.
absl::StatusOr<std::vector<int64_t>> DecodeTokenIds(absl::string_view bytes);

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_SHARDING_H_
