#include "worker/gradient_reducer.h"

#include <ATen/CPUGeneratorImpl.h>

#include "gtest/gtest.h"
#include "worker/collectives/local_group.h"

namespace ddlm {
namespace {

using ::ddlm::testing::RunOnLocalGlooGroup;

TEST(GradientAllReducerTest, AveragesEveryGradientInPlaceAcrossBuckets) {
  RunOnLocalGlooGroup(2, [](int rank, Collective& collective) {
    // 3 gradients of 1000, 10 and 5000 floats; 2 KiB buckets: [g0], [g1, g2].
    std::vector<torch::Tensor> grads = {torch::full({10, 100}, 1.0f + rank), torch::full({10}, 10.0f * rank),
                                        torch::full({50, 100}, -2.0f * (rank + 1))};
    GradientAllReducer reducer(&collective, 2048);
    ASSERT_TRUE(reducer.Reduce(grads).ok());
    EXPECT_EQ(reducer.num_buckets(), 2);
    EXPECT_TRUE(torch::equal(grads[0], torch::full({10, 100}, 1.5f)));
    EXPECT_TRUE(torch::equal(grads[1], torch::full({10}, 5.0f)));
    EXPECT_TRUE(torch::equal(grads[2], torch::full({50, 100}, -3.0f)));
    EXPECT_EQ(reducer.stats().collectives, 2);
    EXPECT_EQ(reducer.stats().bytes, (1000 + 10 + 5000 + 1) * 4);
    EXPECT_FALSE(reducer.stop_agreed()->load());
  });
}

TEST(GradientAllReducerTest, OneRanksStopRequestStopsEveryRankAfterTheSameStep) {
  RunOnLocalGlooGroup(3, [](int rank, Collective& collective) {
    std::vector<torch::Tensor> grads = {torch::ones({4})};
    GradientAllReducer reducer(&collective);
    ASSERT_TRUE(reducer.Reduce(grads).ok());
    EXPECT_FALSE(reducer.stop_agreed()->load());
    if (rank == 2) reducer.RequestStop();
    ASSERT_TRUE(reducer.Reduce(grads).ok());
    EXPECT_TRUE(reducer.stop_agreed()->load()) << "rank " << rank;
    EXPECT_TRUE(torch::equal(grads[0], torch::ones({4})));
  });
}

TEST(GradientAllReducerTest, RejectsNonFloatGradients) {
  RunOnLocalGlooGroup(1, [](int, Collective& collective) {
    GradientAllReducer reducer(&collective);
    std::vector<torch::Tensor> grads = {torch::ones({4}, torch::kInt64)};
    EXPECT_EQ(reducer.Reduce(grads).code(), absl::StatusCode::kInvalidArgument);
  });
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

// Overlap: hooks fill the buckets during backward; the result is the same average.
TEST(GradientAllReducerTest, OverlappedReductionMatchesTheAverage) {
  RunOnLocalGlooGroup(2, [](int rank, Collective& collective) {
    torch::nn::Linear first(64, 32), second(32, 8), unused(4, 4);
    std::vector<torch::Tensor> params;
    for (auto* m : {&first, &second, &unused}) {
      for (const torch::Tensor& p : (*m)->parameters()) params.push_back(p);
    }
    // The same weights on both ranks without the (process-wide, shared by these
    // threads) random generator.
    {
      torch::NoGradGuard no_grad;
      for (torch::Tensor& p : params) p.copy_(torch::linspace(-0.5, 0.5, p.numel()).view(p.sizes()));
    }
    GradientAllReducer reducer(&collective, /*bucket_bytes=*/512);
    ASSERT_TRUE(reducer.Attach(params).ok());
    EXPECT_GE(reducer.num_buckets(), 2);
    for (int step = 0; step < 3; ++step) {
      for (torch::Tensor& p : params) p.mutable_grad() = torch::Tensor();
      // Each rank's input differs; the loss of rank r is scaled by (r + 1).
      torch::Tensor x = torch::full({5, 64}, 0.1f * (step + 1));
      torch::Tensor loss = second(torch::relu(first(x))).sum() * static_cast<float>(rank + 1);
      loss.backward();
      std::vector<torch::Tensor> grads;
      for (torch::Tensor& p : params) {
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        grads.push_back(p.grad());
      }
      // Expected average: (1 + 2) / 2 = 1.5 times rank 0's gradient.
      std::vector<torch::Tensor> expected;
      for (const torch::Tensor& g : grads) expected.push_back(g / static_cast<float>(rank + 1) * 1.5f);
      ASSERT_TRUE(reducer.Reduce(grads).ok());
      for (size_t i = 0; i < grads.size(); ++i) {
        EXPECT_TRUE(torch::allclose(grads[i], expected[i], 1e-6, 1e-6)) << "step " << step << " param " << i;
      }
    }
    EXPECT_EQ(reducer.stats().calls, 3);
    EXPECT_GT(reducer.stats().collectives, 3);
    EXPECT_FALSE(reducer.stop_agreed()->load());
  });
}

// Row-sparse gradients: rank r's embedding gradient has rows `touched[r]` nonzero.
// Only the union of the rows is all-reduced, and the result equals the dense average
// (exactly, with two ranks: a + b is the same in any order).
std::vector<torch::Tensor> EmbeddingGrads(int rank, const std::vector<std::vector<int64_t>>& touched, int64_t rows) {
  torch::Tensor emb = torch::zeros({rows, 8});
  for (int64_t row : touched[rank]) {
    emb[row] = torch::linspace(0.1, 0.8, 8) * static_cast<float>(row + 1) / (rank + 3.0f);
  }
  return {torch::full({6}, 0.25f * (rank + 1)), emb, torch::full({3, 5}, -1.0f * rank)};
}

class RowSparseTest : public ::testing::TestWithParam<bool> {};  // Overlapped?

TEST_P(RowSparseTest, AllReducesOnlyTheUnionOfTouchedRowsAndMatchesTheDenseAverage) {
  const bool overlap = GetParam();
  const std::vector<std::vector<int64_t>> touched = {{1, 5, 9}, {5, 30}};
  const int64_t rows = 40;
  std::vector<std::vector<torch::Tensor>> dense(2), sparse(2);
  std::vector<ReducerStats> stats(2);
  RunOnLocalGlooGroup(2, [&](int rank, Collective& collective) {
    dense[rank] = EmbeddingGrads(rank, touched, rows);
    GradientAllReducer plain(&collective);
    ASSERT_TRUE(plain.Reduce(dense[rank]).ok());

    sparse[rank] = EmbeddingGrads(rank, touched, rows);
    GradientAllReducer reducer(&collective);
    ASSERT_TRUE(reducer.set_row_sparse_gradients({1}).ok());
    if (overlap) {
      // Attach with stand-in parameters of the gradients' shapes; no backward runs, so
      // Reduce deposits every bucketed gradient itself.
      std::vector<torch::Tensor> params;
      for (const torch::Tensor& g : sparse[rank]) params.push_back(torch::zeros_like(g).requires_grad_());
      ASSERT_TRUE(reducer.Attach(params).ok());
    }
    ASSERT_TRUE(reducer.Reduce(sparse[rank]).ok());
    EXPECT_EQ(reducer.set_row_sparse_gradients({0}).code(), absl::StatusCode::kFailedPrecondition);
    stats[rank] = reducer.stats();
  });
  for (int rank = 0; rank < 2; ++rank) {
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_TRUE(torch::equal(sparse[rank][i], dense[rank][i])) << "rank " << rank << " grad " << i;
      EXPECT_TRUE(torch::equal(sparse[rank][i], sparse[0][i]));
    }
    // Rows 1, 5, 9, 30 of 40.
    EXPECT_EQ(stats[rank].rows_reduced, 4);
    EXPECT_EQ(stats[rank].rows_total, 40);
    // The bucket (6 + 15 floats and the stop flag), one byte per row, 4 rows of 8.
    EXPECT_EQ(stats[rank].bytes, (6 + 15 + 1) * 4 + 40 + 4 * 8 * 4);
  }
  // Rows nobody touched stay zero; row 5, touched by both, is the average.
  EXPECT_TRUE(torch::equal(sparse[0][1][0], torch::zeros({8})));
  EXPECT_TRUE(torch::allclose(sparse[0][1][5], torch::linspace(0.1, 0.8, 8) * 6.0f * (1 / 3.0f + 1 / 4.0f) / 2));
}

INSTANTIATE_TEST_SUITE_P(Overlap, RowSparseTest, ::testing::Bool());

TEST(GradientAllReducerTest, RowSparseGradientTouchedMostlyGoesWhole) {
  RunOnLocalGlooGroup(3, [](int rank, Collective& collective) {
    // Rank r touches rows r, r + 3, ...: the union is every row.
    torch::Tensor emb = torch::zeros({12, 4});
    for (int64_t row = rank; row < 12; row += 3) emb[row].fill_(static_cast<float>(row));
    std::vector<torch::Tensor> grads = {emb};
    GradientAllReducer reducer(&collective);
    ASSERT_TRUE(reducer.set_row_sparse_gradients({0}).ok());
    ASSERT_TRUE(reducer.Reduce(grads).ok());
    EXPECT_TRUE(torch::allclose(grads[0], (torch::arange(12, torch::kFloat32) / 3).unsqueeze(1).expand({12, 4})));
    EXPECT_EQ(reducer.stats().rows_reduced, 12);
  });
}

TEST(GradientAllReducerTest, RejectsARowSparsePositionThatIsNotAMatrix) {
  RunOnLocalGlooGroup(1, [](int, Collective& collective) {
    std::vector<torch::Tensor> grads = {torch::ones({4})};
    GradientAllReducer reducer(&collective);
    ASSERT_TRUE(reducer.set_row_sparse_gradients({3}).ok());
    EXPECT_EQ(reducer.Reduce(grads).code(), absl::StatusCode::kInvalidArgument);
  });
}

// BF16 on the wire: half the bytes, every rank the same float32 result, within
// bfloat16's rounding of the float32 average.
TEST_P(RowSparseTest, Bfloat16WireHalvesTheBytesAndStaysWithinItsRounding) {
  const bool overlap = GetParam();
  std::vector<std::vector<torch::Tensor>> out(2);
  std::vector<ReducerStats> stats(2);
  RunOnLocalGlooGroup(2, [&](int rank, Collective& collective) {
    torch::Generator gen = at::detail::createCPUGenerator(7 + rank);
    out[rank] = {torch::randn({300}, gen), torch::randn({20, 10}, gen)};
    GradientAllReducer reducer(&collective, /*bucket_bytes=*/512);
    ASSERT_TRUE(reducer.set_wire_dtype(torch::kBFloat16).ok());
    if (overlap) {
      std::vector<torch::Tensor> params;
      for (const torch::Tensor& g : out[rank]) params.push_back(torch::zeros_like(g).requires_grad_());
      ASSERT_TRUE(reducer.Attach(params).ok());
    }
    ASSERT_TRUE(reducer.Reduce(out[rank]).ok());
    EXPECT_EQ(reducer.set_wire_dtype(torch::kFloat32).code(), absl::StatusCode::kFailedPrecondition);
    stats[rank] = reducer.stats();
  });
  std::vector<torch::Tensor> expected;
  {
    torch::Generator g0 = at::detail::createCPUGenerator(7), g1 = at::detail::createCPUGenerator(8);
    torch::Tensor a0 = torch::randn({300}, g0), b0 = torch::randn({20, 10}, g0);
    torch::Tensor a1 = torch::randn({300}, g1), b1 = torch::randn({20, 10}, g1);
    expected = {(a0 + a1) / 2, (b0 + b1) / 2};
  }
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(torch::equal(out[0][i], out[1][i])) << "grad " << i;
    EXPECT_EQ(out[0][i].scalar_type(), torch::kFloat32);
    // Two roundings of 2^-8 relative each, on values of magnitude up to ~4.
    EXPECT_TRUE(torch::allclose(out[0][i], expected[i], /*rtol=*/1e-2, /*atol=*/2e-2));
    EXPECT_FALSE(torch::equal(out[0][i], expected[i]));  // It did round.
  }
  EXPECT_EQ(stats[0].bytes, (300 + 200 + 1) * 2);
}

TEST(GradientAllReducerTest, RejectsAWireDtypeOtherThanFloatAndBfloat16) {
  RunOnLocalGlooGroup(1, [](int, Collective& collective) {
    GradientAllReducer reducer(&collective);
    EXPECT_EQ(reducer.set_wire_dtype(torch::kFloat16).code(), absl::StatusCode::kInvalidArgument);
  });
}

}  // namespace
}  // namespace ddlm
