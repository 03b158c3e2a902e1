#include "worker/gradient_reducer.h"

#include "gtest/gtest.h"
#include "worker/collectives/local_group.h"

namespace ddlm {
namespace {

using ::ddlm::testing::RunOnLocalGlooGroup;

TEST(GradientAllReducerTest, AveragesEveryGradientInPlaceAcrossBuckets) {
  RunOnLocalGlooGroup(2, [](int rank, Collective& collective) {
    // 3 gradients of 1000, 10 and 5000 floats; 2 KiB buckets: [g0], [g1, g2].
    std::vector<torch::Tensor> grads = {torch::full({10, 100}, 1.0f + rank),
                                        torch::full({10}, 10.0f * rank),
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

}  // namespace
}  // namespace ddlm
