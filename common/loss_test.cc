#include "common/loss.h"

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

}  // namespace
}  // namespace ddlm
