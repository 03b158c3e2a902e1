#include "common/base/sharding.h"

#include <numeric>
#include <vector>

#include "common/training/batching.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(ShardingTest, RanksTogetherHoldTheColumnsOfOneBigBatch) {
  std::vector<int64_t> ids(1003);
  std::iota(ids.begin(), ids.end(), 0);
  const int world = 3;
  const int64_t batch = 4;
  torch::Tensor big = Batchify(ids, world * batch);  // [rows, 12]
  for (int r = 0; r < world; ++r) {
    ShardRange range = *TrainShard(static_cast<int64_t>(ids.size()), world, r, batch);
    std::vector<int64_t> slice(ids.begin() + range.begin, ids.begin() + range.end);
    torch::Tensor mine = Batchify(slice, batch);
    ASSERT_EQ(mine.size(0), big.size(0)) << "rank " << r;
    EXPECT_TRUE(torch::equal(mine, big.narrow(1, r * batch, batch))) << "rank " << r;
  }
}

TEST(ShardingTest, EvalShardsAreEqualAndContiguous) {
  ShardRange a = *EvalShard(10, 3, 0);
  ShardRange b = *EvalShard(10, 3, 1);
  ShardRange c = *EvalShard(10, 3, 2);
  EXPECT_EQ(a.begin, 0);
  EXPECT_EQ(a.end, b.begin);
  EXPECT_EQ(b.end, c.begin);
  EXPECT_EQ(a.size(), 3);
  EXPECT_EQ(c.size(), 3);
}

TEST(ShardingTest, TokenIdsRoundTripAndBadBytesAreDataLoss) {
  std::vector<int64_t> ids = {0, 1, 255, 256, 70000, 2147483647};
  auto decoded = DecodeTokenIds(EncodeTokenIds(ids, 1, 6));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, std::vector<int64_t>(ids.begin() + 1, ids.end()));
  EXPECT_EQ(DecodeTokenIds("abc").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeTokenIds(std::string(4, '\xff')).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ShardingTest, RejectsBadRankAndBatch) {
  EXPECT_EQ(TrainShard(100, 2, 2, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TrainShard(100, 2, -1, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TrainShard(100, 2, 0, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EvalShard(100, 0, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ddlm
