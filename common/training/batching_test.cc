#include "common/training/batching.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/token_file.h"
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

// A mapped token file batched as a view gives the same windows, as int64, as the same
// ids in memory: 2-byte ids at and above 32,768 (int16 in the tensor) included.
TEST(BatchingTest, MappedTokenFilesOfEitherWidthBatchAsTheSameIdsInMemory) {
  for (int64_t vocabulary : {int64_t{65536}, int64_t{70000}}) {
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < 1000; ++i) ids.push_back((i * 40503) % vocabulary);
    ids[7] = vocabulary - 1;
    const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/ids-", vocabulary, ".tok");
    auto writer = TokenFileWriter::Create(path, vocabulary, 1);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append(ids).ok());
    ASSERT_TRUE((*writer)->Finish().ok());
    auto file = TokenFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_EQ((*file)->width(), vocabulary > 65536 ? 4 : 2);
    const torch::Tensor mapped = BatchifyView(MappedIds(std::shared_ptr<const TokenFile>(*std::move(file))), 7);
    const torch::Tensor in_memory = Batchify(ids, 7);
    ASSERT_EQ(NumBatches(mapped, 35), NumBatches(in_memory, 35));
    for (int64_t i = 0; i < mapped.size(0) - 1; i += 35) {
      Batch a = GetBatch(mapped, i, 35), b = GetBatch(in_memory, i, 35);
      EXPECT_EQ(a.data.scalar_type(), torch::kLong);
      EXPECT_TRUE(torch::equal(a.data, b.data)) << vocabulary << " at " << i;
      EXPECT_TRUE(torch::equal(a.targets, b.targets)) << vocabulary << " at " << i;
    }
    EXPECT_EQ(GetBatch(mapped, 0, 35).data.max().item<int64_t>(), vocabulary - 1);
  }
}

}  // namespace
}  // namespace ddlm
