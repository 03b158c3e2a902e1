#include "common/base/sharding.h"

#include "absl/strings/str_cat.h"

namespace ddlm {
namespace {

absl::Status CheckRank(int world_size, int rank) {
  if (world_size < 1) return absl::InvalidArgumentError(absl::StrCat("world size must be >= 1, got ", world_size));
  if (rank < 0 || rank >= world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", rank, " is outside [0, ", world_size, ")"));
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

std::string EncodeTokenIds(const std::vector<int64_t>& ids, int64_t begin, int64_t end) {
  std::string out(static_cast<size_t>(end - begin) * 4, '\0');
  for (int64_t i = begin; i < end; ++i) {
    const uint32_t v = static_cast<uint32_t>(ids[static_cast<size_t>(i)]);
    char* p = &out[static_cast<size_t>(i - begin) * 4];
    for (int b = 0; b < 4; ++b) p[b] = static_cast<char>((v >> (8 * b)) & 0xff);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> DecodeTokenIds(absl::string_view bytes) {
  if (bytes.size() % 4 != 0) {
    return absl::DataLossError(
        absl::StrCat("token shard of ", bytes.size(), " bytes is not a whole number of int32 ids"));
  }
  std::vector<int64_t> ids(bytes.size() / 4);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t i = 0; i < ids.size(); ++i) {
    const uint32_t v = static_cast<uint32_t>(p[4 * i]) | (static_cast<uint32_t>(p[4 * i + 1]) << 8) |
                       (static_cast<uint32_t>(p[4 * i + 2]) << 16) | (static_cast<uint32_t>(p[4 * i + 3]) << 24);
    if (v > 0x7fffffffu) return absl::DataLossError(absl::StrCat("token shard holds a negative id at ", i));
    ids[i] = static_cast<int64_t>(v);
  }
  return ids;
}

}  // namespace ddlm
