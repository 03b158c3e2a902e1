#include "common/training/loss.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(LossTest, MatchesLogSoftmaxNllInValueAndGradient) {
  torch::manual_seed(0);
  torch::Tensor logits = torch::randn({13, 29}, torch::requires_grad());
  torch::Tensor targets = torch::randint(29, {13}, torch::kInt64);

  torch::Tensor ours = CrossEntropy(logits * 3.0, targets);
  torch::Tensor grad_ours = torch::autograd::grad({ours * 2.0}, {logits})[0];
  torch::Tensor ref = torch::nll_loss(torch::log_softmax(logits * 3.0, 1), targets);
  torch::Tensor grad_ref = torch::autograd::grad({ref * 2.0}, {logits})[0];

  EXPECT_NEAR(ours.item<double>(), ref.item<double>(), 1e-6);
  EXPECT_TRUE(torch::allclose(grad_ours, grad_ref, 1e-5, 1e-7));
}

TEST(LossTest, RepeatedTargetsAccumulate) {
  torch::Tensor logits = torch::zeros({2, 3}, torch::requires_grad());
  torch::Tensor targets = torch::tensor({1, 1}, torch::kInt64);
  torch::Tensor loss = CrossEntropy(logits, targets);
  EXPECT_NEAR(loss.item<double>(), std::log(3.0), 1e-6);
  loss.backward();
  // (1/3 - onehot) / 2 per row.
  EXPECT_NEAR(logits.grad()[0][1].item<double>(), (1.0 / 3 - 1) / 2, 1e-6);
  EXPECT_NEAR(logits.grad()[1][0].item<double>(), (1.0 / 3) / 2, 1e-6);
}

// linear + CrossEntropy, the reference the fused loss must match.
struct Reference {
  torch::Tensor loss, grad_hidden, grad_weight, grad_bias;
};

Reference RunLoss(bool fused, int64_t block_rows, const torch::Tensor& hidden0, const torch::Tensor& weight0,
                  const torch::Tensor& bias0, const torch::Tensor& targets, double upstream_grad) {
  torch::Tensor hidden = hidden0.clone().requires_grad_(true);
  torch::Tensor weight = weight0.clone().requires_grad_(true);
  torch::Tensor bias = bias0.clone().requires_grad_(true);
  // `hidden * 1` makes the input a non-leaf, as the dropout output is in the model.
  torch::Tensor loss = fused ? LinearCrossEntropy(hidden * 1, weight, bias, targets, block_rows)
                             : CrossEntropy(torch::linear(hidden * 1, weight, bias), targets);
  (loss * upstream_grad).backward();
  return {loss.detach(), hidden.grad(), weight.grad(), bias.grad()};
}

TEST(LinearCrossEntropyTest, MatchesLinearThenCrossEntropyForEveryBlockSize) {
  torch::manual_seed(1);
  const int64_t n = 37, h = 11, v = 203;
  torch::Tensor hidden = torch::randn({n, h});
  torch::Tensor weight = torch::randn({v, h}) * 0.5;
  torch::Tensor bias = torch::randn({v});
  // Repeated targets, and the first and last words, to exercise the one-hot updates.
  torch::Tensor targets = torch::randint(v, {n}, torch::kInt64);
  targets[0] = 0;
  targets[1] = v - 1;
  targets[2] = targets[3];
  ASSERT_TRUE(LinearCrossEntropyIsFused(hidden, weight));
  const Reference ref = RunLoss(false, 0, hidden, weight, bias, targets, 2.5);
  for (int64_t block_rows : {1, 7, 36, 37, 64}) {
    SCOPED_TRACE(block_rows);
    const Reference got = RunLoss(true, block_rows, hidden, weight, bias, targets, 2.5);
    EXPECT_NEAR(got.loss.item<double>(), ref.loss.item<double>(), 1e-5 * ref.loss.item<double>());
    EXPECT_TRUE(torch::allclose(got.grad_hidden, ref.grad_hidden, 1e-4, 1e-6));
    EXPECT_TRUE(torch::allclose(got.grad_weight, ref.grad_weight, 1e-4, 1e-6));
    EXPECT_TRUE(torch::allclose(got.grad_bias, ref.grad_bias, 1e-4, 1e-6));
  }
}

TEST(LinearCrossEntropyTest, LargeScoresDoNotOverflow) {
  // Scores near 1e4: exp() of them overflows float32 unless it is taken relative to
  // the row's maximum.
  torch::Tensor hidden = torch::full({3, 1}, 100.0);
  torch::Tensor weight = torch::arange(0, 50, torch::kFloat).unsqueeze(1) * 2.0;  // up to 98
  torch::Tensor bias = torch::zeros({50});
  torch::Tensor targets = torch::tensor({49, 48, 0}, torch::kInt64);
  const Reference ref = RunLoss(false, 0, hidden, weight, bias, targets, 1.0);
  const Reference got = RunLoss(true, 2, hidden, weight, bias, targets, 1.0);
  ASSERT_TRUE(std::isfinite(got.loss.item<double>()));
  EXPECT_NEAR(got.loss.item<double>(), ref.loss.item<double>(), 1e-3);
  EXPECT_TRUE(torch::allclose(got.grad_weight, ref.grad_weight, 1e-4, 1e-5));
}

TEST(LinearCrossEntropyTest, SharedWeightGetsBothGradients) {
  // A tied model feeds the embedding matrix to the decoder: the fused loss's weight
  // gradient must add to the embedding's, as linear's does.
  torch::manual_seed(2);
  torch::Tensor weight0 = torch::randn({17, 5});
  torch::Tensor ids = torch::randint(17, {9}, torch::kInt64);
  torch::Tensor targets = torch::randint(17, {9}, torch::kInt64);
  torch::Tensor bias = torch::zeros({17});
  std::vector<torch::Tensor> grads;
  for (bool fused : {false, true}) {
    torch::Tensor weight = weight0.clone().requires_grad_(true);
    torch::Tensor hidden = torch::tanh(weight.index_select(0, ids));
    torch::Tensor loss = fused ? LinearCrossEntropy(hidden, weight, bias, targets, 4)
                               : CrossEntropy(torch::linear(hidden, weight, bias), targets);
    loss.backward();
    grads.push_back(weight.grad());
  }
  EXPECT_TRUE(torch::allclose(grads[0], grads[1], 1e-4, 1e-6));
}

TEST(LinearCrossEntropyTest, Bf16MatmulTracksFloat32AndReturnsFloat32Gradients) {
  torch::manual_seed(4);
  const int64_t n = 64, h = 32, v = 300;
  torch::Tensor hidden0 = torch::randn({n, h});
  torch::Tensor weight0 = torch::randn({v, h}) * 0.3;
  torch::Tensor bias0 = torch::randn({v}) * 0.1;
  torch::Tensor targets = torch::randint(v, {n}, torch::kInt64);
  std::vector<torch::Tensor> loss, grad_weight, grad_hidden;
  for (bool bf16 : {false, true}) {
    torch::Tensor hidden = hidden0.clone().requires_grad_(true);
    torch::Tensor weight = weight0.clone().requires_grad_(true);
    torch::Tensor bias = bias0.clone().requires_grad_(true);
    torch::Tensor l = LinearCrossEntropy(hidden, weight, bias, targets, 8, bf16);
    l.backward();
    EXPECT_EQ(l.scalar_type(), torch::kFloat);
    EXPECT_EQ(weight.grad().scalar_type(), torch::kFloat);  // Master weights' gradients.
    EXPECT_EQ(hidden.grad().scalar_type(), torch::kFloat);
    loss.push_back(l.detach());
    grad_weight.push_back(weight.grad());
    grad_hidden.push_back(hidden.grad());
  }
  // bfloat16 GEMMs round the scores to 8 bits of mantissa: close, and not equal (so
  // the GEMMs really ran in bfloat16).
  EXPECT_NEAR(loss[1].item<double>(), loss[0].item<double>(), 0.01 * loss[0].item<double>());
  EXPECT_NE(loss[1].item<double>(), loss[0].item<double>());
  const double rel = ((grad_weight[1] - grad_weight[0]).norm() / grad_weight[0].norm()).item<double>();
  EXPECT_LT(rel, 0.03);
  EXPECT_GT(rel, 0.0);
  EXPECT_LT(((grad_hidden[1] - grad_hidden[0]).norm() / grad_hidden[0].norm()).item<double>(), 0.03);
}

TEST(LinearCrossEntropyTest, OnlyCpuTensorsOfFloatTypesAreFused) {
  EXPECT_TRUE(LinearCrossEntropyIsFused(torch::zeros({2, 3}), torch::zeros({4, 3})));
  EXPECT_TRUE(LinearCrossEntropyIsFused(torch::zeros({2, 3}, torch::kBFloat16), torch::zeros({4, 3})));
  EXPECT_FALSE(LinearCrossEntropyIsFused(torch::zeros({2, 3}, torch::kDouble), torch::zeros({4, 3})));
  EXPECT_FALSE(LinearCrossEntropyIsFused(torch::zeros({2, 2, 3}), torch::zeros({4, 3})));
  // The unfused path gives the same value.
  torch::Tensor hidden = torch::randn({5, 3}, torch::kDouble);
  torch::Tensor weight = torch::randn({4, 3}, torch::kDouble);
  torch::Tensor targets = torch::tensor({0, 3, 1, 1, 2}, torch::kInt64);
  torch::Tensor bias = torch::zeros({4}, torch::kDouble);
  EXPECT_NEAR(LinearCrossEntropy(hidden, weight, bias, targets).item<double>(),
              CrossEntropy(torch::linear(hidden, weight, bias), targets).item<double>(), 1e-12);
}

TEST(LinearCrossEntropyTest, NllSumMatchesTheSummedLoss) {
  torch::manual_seed(3);
  torch::Tensor hidden = torch::randn({41, 6});
  torch::Tensor weight = torch::randn({97, 6});
  torch::Tensor bias = torch::randn({97});
  torch::Tensor targets = torch::randint(97, {41}, torch::kInt64);
  const double ref =
      torch::nll_loss(torch::log_softmax(torch::linear(hidden, weight, bias), 1), targets, {}, at::Reduction::Sum)
          .item<double>();
  torch::Tensor sum = LinearNllSum(hidden, weight, bias, targets);
  EXPECT_EQ(sum.scalar_type(), torch::kDouble);
  EXPECT_NEAR(sum.item<double>(), ref, 1e-5 * std::abs(ref));
  // bfloat16 GEMMs give the same figure to bfloat16's precision.
  torch::Tensor bf16 = LinearNllSum(hidden, weight, bias, targets, /*bf16_matmul=*/true);
  EXPECT_NEAR(bf16.item<double>(), ref, 0.02 * std::abs(ref));
}

}  // namespace
}  // namespace ddlm
