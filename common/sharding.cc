#include "common/sharding.h"

#include "absl/strings/str_cat.h"

namespace ddlm {
namespace {

absl::Status CheckRank(int world_size, int rank) {
  if (world_size < 1) return absl::InvalidArgumentError(absl::StrCat("world size must be >= 1, got ", world_size));
  if (rank < 0 || rank >= world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", rank, " is outside [0, ", world_size, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ShardRange> TrainShard(int64_t num_tokens, int world_size, int rank, int64_t batch) {
  if (absl::Status s = CheckRank(world_size, rank); !s.ok()) return s;
  if (batch < 1) return absl::InvalidArgumentError(absl::StrCat("batch must be >= 1, got ", batch));
  const int64_t rows = num_tokens / (world_size * batch);
  const int64_t length = rows * batch;
  return ShardRange{rank * length, (rank + 1) * length};
}

absl::StatusOr<ShardRange> EvalShard(int64_t num_tokens, int world_size, int rank) {
  if (absl::Status s = CheckRank(world_size, rank); !s.ok()) return s;
  const int64_t length = num_tokens / world_size;
  return ShardRange{rank * length, (rank + 1) * length};
}

}  // namespace ddlm
