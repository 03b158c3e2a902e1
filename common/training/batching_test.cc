#include "common/training/batching.h"

#include "gtest/gtest.h"

namespace ddlm {
namespace {

std::vector<int64_t> Range(int64_t n) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(BatchingTest, BatchifyTrimsAndMakesColumnsContiguousStreams) {
  torch::Tensor b = Batchify(Range(26), 4);  // 26 = 4 * 6 + 2 trimmed.
  ASSERT_EQ(b.sizes(), (std::vector<int64_t>{6, 4}));
  for (int64_t col = 0; col < 4; ++col) {
    for (int64_t row = 0; row < 6; ++row) {
      EXPECT_EQ(b[row][col].item<int64_t>(), col * 6 + row);
    }
  }
}

TEST(BatchingTest, GetBatchShiftsTargetsByOneRow) {
  torch::Tensor source = Batchify(Range(40), 2);  // [20, 2]
  Batch batch = GetBatch(source, 0, 5);
  ASSERT_EQ(batch.data.sizes(), (std::vector<int64_t>{5, 2}));
  ASSERT_EQ(batch.targets.sizes(), (std::vector<int64_t>{10}));
  EXPECT_TRUE(torch::equal(batch.targets, source.narrow(0, 1, 5).reshape({-1})));
  EXPECT_EQ(batch.data[0][1].item<int64_t>(), 20);
  EXPECT_EQ(batch.targets[1].item<int64_t>(), 21);
}

TEST(BatchingTest, LastWindowIsShorter) {
  torch::Tensor source = Batchify(Range(40), 2);  // 20 rows: windows at 0, 7, 14.
  EXPECT_EQ(NumBatches(source, 7), 3);
  Batch last = GetBatch(source, 14, 7);
  EXPECT_EQ(last.data.size(0), 5);  // min(7, 20 - 1 - 14)
  EXPECT_EQ(last.targets[last.targets.size(0) - 1].item<int64_t>(), 39);
}

TEST(BatchingTest, TooShortSourceHasNoBatches) { EXPECT_EQ(NumBatches(Batchify(Range(3), 2), 5), 0); }

}  // namespace
}  // namespace ddlm
