#include "common/training/attention.h"

#include "common/training/model.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

torch::nn::TransformerEncoder Reference(int64_t emsize, int64_t heads, int64_t nhid, int64_t layers) {
  return torch::nn::TransformerEncoder(
      torch::nn::TransformerEncoderOptions(
          torch::nn::TransformerEncoderLayerOptions(emsize, heads).dim_feedforward(nhid).dropout(0.1), layers)
          .norm(torch::nn::AnyModule(torch::nn::LayerNorm(torch::nn::LayerNormOptions({emsize})))));
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// ddlm's encoder against LibTorch's with the same weights: the same parameter names
// (CopyFrom checks each), the same outputs in eval mode, and in training mode the same
// dropout masks for the same seed.
TEST(CausalEncoderTest, EqualsLibTorchsTransformerEncoder) {
  torch::manual_seed(3);
  torch::nn::TransformerEncoder reference = Reference(16, 4, 24, 2);
  CausalEncoder ours(16, 4, 24, 2, 0.1);
  ours->CopyFrom(*reference);
  EXPECT_EQ(ours->named_parameters().keys(), reference->named_parameters().keys());
  torch::Tensor x = torch::randn({9, 3, 16});
  torch::Tensor mask = CausalMask(9, 0, torch::kCPU);
  reference->eval();
  ours->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor expected = reference->forward(x, mask);
  EXPECT_LT(MaxAbsDiff(ours->forward(x, mask), expected), 1e-6);
  // Weights off and on give the same output.
  std::vector<torch::Tensor> weights;
  EXPECT_LT(MaxAbsDiff(ours->forward(x, mask, nullptr, &weights), expected), 1e-6);
  ASSERT_EQ(weights.size(), 2u);

  reference->train();
  ours->train();
  torch::manual_seed(11);
  const torch::Tensor expected_train = reference->forward(x, mask);
  torch::manual_seed(11);
  EXPECT_LT(MaxAbsDiff(ours->forward(x, mask), expected_train), 1e-6);
  // And it is really dropping something (otherwise the line above proves nothing).
  EXPECT_GT(MaxAbsDiff(expected_train, expected), 1e-3);
}

TEST(CausalMaskTest, QueriesSeeTheCachedKeysAndTheirOwnPast) {
  torch::Tensor m = CausalMask(2, 3, torch::kCPU);
  ASSERT_EQ(m.sizes(), (std::vector<int64_t>{2, 5}));
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 5; ++j) {
      const float v = m[i][j].item<float>();
      if (j <= 3 + i) {
        EXPECT_EQ(v, 0.0f) << i << "," << j;
      } else {
        EXPECT_TRUE(std::isinf(v) && v < 0) << i << "," << j;
      }
    }
  }
}

ModelConfig Config(ModelType type) {
  ModelConfig c;
  c.set_type(type);
  c.set_emsize(16);
  c.set_nhid(24);
  c.set_nlayers(2);
  c.set_nhead(4);
  c.set_dropout(0.2f);
  return c;
}

TEST(AttentionWeightsTest, RowsSumToOneAndTheFutureIsMasked) {
  torch::manual_seed(5);
  auto model = *BuildModel(Config(TRANSFORMER), 50);
  model->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor input = torch::randint(50, {7, 1}, torch::kInt64);
  const torch::Tensor before = model->Logits(input, nullptr);
  absl::StatusOr<std::vector<torch::Tensor>> weights = model->AttentionWeights(input);
  ASSERT_TRUE(weights.ok()) << weights.status();
  ASSERT_EQ(weights->size(), 2u);
  for (const torch::Tensor& w : *weights) {
    ASSERT_EQ(w.sizes(), (std::vector<int64_t>{4, 7, 7}));
    EXPECT_LT(MaxAbsDiff(w.sum(-1), torch::ones({4, 7})), 1e-6);
    EXPECT_EQ(torch::triu(w, 1).abs().max().item<float>(), 0.0f);
    // Not trivially uniform or one-hot: the last row spreads over several positions.
    EXPECT_GT(w[0][6].gt(1e-3).sum().item<int64_t>(), 1);
  }
  // Asking for the weights changed nothing in the model's output.
  EXPECT_LT(MaxAbsDiff(model->Logits(input, nullptr), before), 1e-6);
}

TEST(AttentionWeightsTest, RecurrentModelsHaveNone) {
  torch::manual_seed(5);
  auto model = *BuildModel(Config(LSTM), 50);
  absl::StatusOr<std::vector<torch::Tensor>> weights = model->AttentionWeights(torch::zeros({3, 1}, torch::kInt64));
  EXPECT_EQ(weights.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(weights.status().message().find("next-word"), std::string::npos) << weights.status();
}

// Incremental decoding against one pass over everything: the Transformer's key/value
// cache and the RNNs' carried state give the same scores at every position.
TEST(DecodeLogitsTest, IncrementalEqualsOnePass) {
  for (ModelType type : {TRANSFORMER, LSTM, GRU, RNN_TANH}) {
    torch::manual_seed(9);
    auto model = *BuildModel(Config(type), 60);
    model->eval();
    torch::NoGradGuard no_grad;
    torch::Tensor ids = torch::randint(60, {12, 1}, torch::kInt64);
    RecurrentState state = model->InitState(1);
    const torch::Tensor whole = model->Logits(ids, &state);  // [12, 60]
    DecodeState decode = model->InitDecodeState();
    // A prefix of 5 at once, then one word at a time.
    std::vector<torch::Tensor> pieces = {model->DecodeLogits(ids.narrow(0, 0, 5), &decode)};
    for (int64_t i = 5; i < 12; ++i) pieces.push_back(model->DecodeLogits(ids.narrow(0, i, 1), &decode));
    EXPECT_EQ(decode.positions, 12);
    EXPECT_LT(MaxAbsDiff(torch::cat(pieces, 0), whole), 1e-5) << ModelType_Name(type);
    // Only the last row, as generation reads a prompt: the same scores.
    DecodeState last = model->InitDecodeState();
    torch::Tensor row = model->DecodeLogits(ids, &last, /*last_only=*/true);
    ASSERT_EQ(row.size(0), 1) << ModelType_Name(type);
    EXPECT_LT(MaxAbsDiff(row[0], whole[11]), 1e-5) << ModelType_Name(type);
    EXPECT_EQ(last.positions, 12);
    if (type == TRANSFORMER) {
      ASSERT_EQ(decode.layers.size(), 2u);
      EXPECT_EQ(decode.layers[0].positions(), 12);
    }
  }
}

}  // namespace
}  // namespace ddlm
