#include "common/loss.h"

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

TEST(LinearCrossEntropyTest, OtherDtypesTakeTheUnfusedPath) {
  torch::Tensor hidden = torch::randn({4, 3}).to(torch::kBFloat16);
  torch::Tensor weight = torch::randn({6, 3}).to(torch::kBFloat16);
  EXPECT_FALSE(LinearCrossEntropyIsFused(hidden, weight));
  torch::Tensor targets = torch::tensor({0, 5, 2, 2}, torch::kInt64);
  torch::Tensor loss = LinearCrossEntropy(hidden, weight, torch::zeros({6}, weight.options()), targets);
  EXPECT_EQ(loss.scalar_type(), torch::kFloat);  // CrossEntropy's float32 softmax
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
}

TEST(LinearCrossEntropyTest, NllSumMatchesTheSummedLoss) {
  torch::manual_seed(3);
  torch::Tensor hidden = torch::randn({41, 6});
  torch::Tensor weight = torch::randn({97, 6});
  torch::Tensor bias = torch::randn({97});
  torch::Tensor targets = torch::randint(97, {41}, torch::kInt64);
  const double ref = torch::nll_loss(torch::log_softmax(torch::linear(hidden, weight, bias), 1),
                                     targets, {}, at::Reduction::Sum)
                         .item<double>();
  torch::Tensor sum = LinearNllSum(hidden, weight, bias, targets);
  EXPECT_EQ(sum.scalar_type(), torch::kDouble);
  EXPECT_NEAR(sum.item<double>(), ref, 1e-5 * std::abs(ref));
  // The unfused path (bfloat16) gives the same figure to bfloat16's precision.
  torch::Tensor bf16 = LinearNllSum(hidden.to(torch::kBFloat16), weight.to(torch::kBFloat16),
                                    bias.to(torch::kBFloat16), targets);
  EXPECT_NEAR(bf16.item<double>(), ref, 0.02 * std::abs(ref));
}

}  // namespace
}  // namespace ddlm
