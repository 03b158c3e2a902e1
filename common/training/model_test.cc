#include "common/training/model.h"

#include "gtest/gtest.h"

namespace ddlm {
namespace {

ModelConfig Config(ModelType type, int emsize = 16, int nhid = 16) {
  ModelConfig c;
  c.set_type(type);
  c.set_emsize(emsize);
  c.set_nhid(nhid);
  c.set_nlayers(2);
  c.set_dropout(0.2f);
  c.set_nhead(2);
  return c;
}

class AllModelsTest : public ::testing::TestWithParam<ModelType> {};

TEST_P(AllModelsTest, OutputsLogProbabilitiesOfTheRightShape) {
  torch::manual_seed(1);
  const int64_t ntoken = 50, seq = 7, batch = 3;
  auto model = BuildModel(Config(GetParam()), ntoken);
  ASSERT_TRUE(model.ok()) << model.status();
  (*model)->eval();
  RecurrentState state = (*model)->InitState(batch);
  EXPECT_EQ((*model)->is_recurrent(), GetParam() != TRANSFORMER);
  EXPECT_EQ(state.size(), GetParam() == LSTM ? 2u : GetParam() == TRANSFORMER ? 0u : 1u);
  torch::Tensor input = torch::randint(ntoken, {seq, batch}, torch::kInt64);
  torch::Tensor out = (*model)->Forward(input, &state);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{seq * batch, ntoken}));
  torch::Tensor sums = out.exp().sum(1);
  EXPECT_TRUE(torch::allclose(sums, torch::ones_like(sums), 1e-5, 1e-5));
  if (GetParam() != TRANSFORMER) {
    EXPECT_EQ(state[0].sizes(), (std::vector<int64_t>{2, batch, 16}));
  }
}

// The parameter RowSparseGradientParameters names is the embedding: its gradient is
// nonzero exactly in the rows of the tokens the batch used.
TEST_P(AllModelsTest, RowSparseGradientIsNonzeroOnlyInTheBatchsRows) {
  torch::manual_seed(2);
  const int64_t ntoken = 40;
  auto model = BuildModel(Config(GetParam()), ntoken);
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<size_t> sparse = (*model)->RowSparseGradientParameters();
  ASSERT_EQ(sparse.size(), 1u);
  const torch::Tensor input = torch::tensor({3, 7, 7, 11, 20, 3}, torch::kInt64).view({3, 2});
  RecurrentState state = (*model)->InitState(2);
  (*model)->Forward(input, &state).sum().backward();
  const torch::Tensor grad = (*model)->parameters()[sparse[0]].grad();
  ASSERT_EQ(grad.sizes(), (std::vector<int64_t>{ntoken, 16}));
  const torch::Tensor touched = grad.ne(0).any(1).nonzero().view(-1);
  EXPECT_TRUE(torch::equal(touched, torch::tensor({3, 7, 11, 20}, torch::kInt64))) << touched;
}

INSTANTIATE_TEST_SUITE_P(Types, AllModelsTest, ::testing::Values(RNN_TANH, RNN_RELU, LSTM, GRU, TRANSFORMER),
                         [](const auto& info) { return ModelType_Name(info.param); });

TEST(ModelTest, TiedWeightsNeedEqualSizes) {
  ModelConfig c = Config(LSTM, 16, 32);
  c.set_tied(true);
  auto model = BuildModel(c, 10);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("nhid must be equal to emsize"), absl::string_view::npos);
}

TEST(ModelTest, TiedModelSharesOneMatrix) {
  ModelConfig untied = Config(GRU);
  ModelConfig tied = untied;
  tied.set_tied(true);
  auto a = BuildModel(untied, 100);
  auto b = BuildModel(tied, 100);
  ASSERT_TRUE(a.ok() && b.ok());
  int64_t na = 0, nb = 0;
  for (auto& p : (*a)->parameters()) na += p.numel();
  for (auto& p : (*b)->parameters()) nb += p.numel();
  EXPECT_EQ(na - nb, 100 * 16);  // One [ntoken, nhid] matrix fewer.
  // The shared matrix's gradient is dense (the decoder's part touches every row).
  const std::vector<size_t> sparse = (*a)->RowSparseGradientParameters();
  ASSERT_EQ(sparse.size(), 1u);
  EXPECT_EQ((*a)->named_parameters().keys()[sparse[0]], "encoder.weight");
  EXPECT_TRUE((*b)->RowSparseGradientParameters().empty());
}

TEST(ModelTest, InitialisesEmbeddingAndDecoderLikeUpstream) {
  torch::manual_seed(3);
  auto model = BuildModel(Config(LSTM), 200);
  ASSERT_TRUE(model.ok());
  auto params = (*model)->named_parameters();
  for (const char* name : {"encoder.weight", "decoder_weight"}) {
    // uniform(-0.1, 0.1): within the range and spread across it.
    EXPECT_LE(params[name].max().item<float>(), 0.1f) << name;
    EXPECT_GT(params[name].max().item<float>(), 0.09f) << name;
    EXPECT_GE(params[name].min().item<float>(), -0.1f) << name;
    EXPECT_LT(params[name].min().item<float>(), -0.09f) << name;
  }
  EXPECT_EQ(params["decoder_bias"].abs().sum().item<float>(), 0.0f);
}

TEST(ModelTest, TransformerIsCausal) {
  torch::manual_seed(5);
  auto model = BuildModel(Config(TRANSFORMER), 30);
  ASSERT_TRUE(model.ok());
  (*model)->eval();
  torch::NoGradGuard no_grad;
  const int64_t seq = 8, batch = 2, ntoken = 30, cut = 4;
  torch::Tensor a = torch::randint(ntoken, {seq, batch}, torch::kInt64);
  torch::Tensor b = a.clone();
  // Change every token after position `cut`.
  b.narrow(0, cut + 1, seq - cut - 1).copy_((a.narrow(0, cut + 1, seq - cut - 1) + 1) % ntoken);
  RecurrentState none;
  torch::Tensor out_a = (*model)->Forward(a, &none).view({seq, batch, ntoken});
  torch::Tensor out_b = (*model)->Forward(b, &none).view({seq, batch, ntoken});
  EXPECT_TRUE(torch::allclose(out_a.narrow(0, 0, cut + 1), out_b.narrow(0, 0, cut + 1), 1e-5, 1e-6));
  // ...while later positions do change.
  EXPECT_FALSE(torch::allclose(out_a.narrow(0, cut + 1, 1), out_b.narrow(0, cut + 1, 1), 1e-5, 1e-6));
}

TEST(ModelTest, RejectsHeadsThatDoNotDivideEmsize) {
  ModelConfig c = Config(TRANSFORMER, 10, 16);
  c.set_nhead(3);
  auto model = BuildModel(c, 10);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("nhead"), absl::string_view::npos);
}

TEST(ModelTest, ParameterCountIsWhatBuildModelBuilds) {
  for (ModelType type : {RNN_TANH, RNN_RELU, LSTM, GRU, TRANSFORMER}) {
    for (bool tied : {false, true}) {
      if (tied && type == TRANSFORMER) continue;
      ModelConfig c;
      c.set_type(type);
      c.set_emsize(12);
      c.set_nhid(tied ? 12 : 20);
      c.set_nlayers(3);
      c.set_nhead(3);
      c.set_tied(tied);
      c.set_dropout(0.1f);
      auto model = BuildModel(c, 57);
      ASSERT_TRUE(model.ok()) << model.status();
      int64_t built = 0;
      for (const torch::Tensor& p : (*model)->parameters()) built += p.numel();
      EXPECT_EQ(ParameterCount(c, 57), built) << ModelType_Name(type) << (tied ? " tied" : "");
    }
  }
}

}  // namespace
}  // namespace ddlm
