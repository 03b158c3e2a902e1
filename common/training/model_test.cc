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

// LibTorch's own multi-layer RNN module of `type`, as the model built one before its
// layers became one module each.
std::shared_ptr<torch::nn::Module> MultiLayerRnn(ModelType type, int64_t in, int64_t hidden, int64_t layers,
                                                 double dropout) {
  switch (type) {
    case LSTM: return torch::nn::LSTM(torch::nn::LSTMOptions(in, hidden).num_layers(layers).dropout(dropout)).ptr();
    case GRU: return torch::nn::GRU(torch::nn::GRUOptions(in, hidden).num_layers(layers).dropout(dropout)).ptr();
    default:
      return torch::nn::RNN(torch::nn::RNNOptions(in, hidden)
                                .num_layers(layers)
                                .dropout(dropout)
                                .nonlinearity(type == RNN_RELU ? torch::nn::RNNOptions::nonlinearity_t(torch::kReLU)
                                                               : torch::nn::RNNOptions::nonlinearity_t(torch::kTanh)))
          .ptr();
  }
}

class StackedLayersTest : public ::testing::TestWithParam<ModelType> {};

// The layers run one module each (so that cuDNN draws no dropout of its own) and still
// compute, on the CPU, exactly what LibTorch's multi-layer module computes: the same
// initial weights from a seed, the same outputs, states and gradients bit for bit in
// training mode with dropout between the layers. Checkpoints of both kinds load.
TEST_P(StackedLayersTest, EqualLibTorchsMultiLayerRnnBitForBit) {
  const ModelType type = GetParam();
  ModelConfig c = Config(type, 12, 16);
  c.set_nlayers(3);
  c.set_dropout(0.3f);
  const int64_t ntoken = 50;
  torch::manual_seed(11);
  auto model = BuildModel(c, ntoken);
  ASSERT_TRUE(model.ok());
  // The reference draws as the model did: the embedding's construction, then the RNN's.
  torch::manual_seed(11);
  torch::nn::Embedding embedding(ntoken, 12);
  std::shared_ptr<torch::nn::Module> reference = MultiLayerRnn(type, 12, 16, 3, 0.3);
  auto ours = (*model)->named_parameters();
  auto theirs = reference->named_parameters();
  int compared = 0;
  for (const auto& item : ours) {
    if (item.key().rfind("rnn.", 0) != 0) continue;
    const std::string former = FormerParameterName(item.key());
    ASSERT_NE(former, item.key());
    const torch::Tensor* same = theirs.find(former.substr(4));
    ASSERT_NE(same, nullptr) << former;
    EXPECT_TRUE(torch::equal(item.value(), *same)) << item.key();
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(theirs.size()));
  EXPECT_EQ(compared, 3 * 4);

  (*model)->train();
  reference->train();
  const torch::Tensor input = torch::randint(ntoken, {7, 5}, torch::kInt64);
  RecurrentState state = (*model)->InitState(5);
  for (torch::Tensor& t : state) t.normal_();
  const RecurrentState initial = {state[0].clone(), type == LSTM ? state[1].clone() : torch::Tensor()};
  const torch::Tensor weights = torch::randn({7 * 5, 16});

  torch::manual_seed(5);
  torch::Tensor hidden = (*model)->Features(input, &state).hidden;
  (hidden * weights).sum().backward();

  torch::manual_seed(5);
  torch::Tensor emb = torch::dropout(torch::embedding((*model)->named_parameters()["encoder.weight"].detach(), input),
                                     0.3, /*train=*/true);
  torch::Tensor out;
  RecurrentState final_state;
  if (type == LSTM) {
    auto r = std::dynamic_pointer_cast<torch::nn::LSTMImpl>(reference)->forward(
        emb, std::make_tuple(initial[0], initial[1]));
    out = std::get<0>(r);
    final_state = {std::get<0>(std::get<1>(r)), std::get<1>(std::get<1>(r))};
  } else if (type == GRU) {
    auto r = std::dynamic_pointer_cast<torch::nn::GRUImpl>(reference)->forward(emb, initial[0]);
    out = std::get<0>(r);
    final_state = {std::get<1>(r)};
  } else {
    auto r = std::dynamic_pointer_cast<torch::nn::RNNImpl>(reference)->forward(emb, initial[0]);
    out = std::get<0>(r);
    final_state = {std::get<1>(r)};
  }
  torch::Tensor expected = torch::dropout(out, 0.3, /*train=*/true).reshape({-1, 16});
  (expected * weights).sum().backward();

  EXPECT_TRUE(torch::equal(hidden, expected));
  ASSERT_EQ(state.size(), final_state.size());
  for (size_t i = 0; i < state.size(); ++i) EXPECT_TRUE(torch::equal(state[i], final_state[i])) << "state " << i;
  for (const auto& item : ours) {
    if (item.key().rfind("rnn.", 0) != 0) continue;
    const torch::Tensor& grad = theirs[FormerParameterName(item.key()).substr(4)].grad();
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(torch::equal(item.value().grad(), grad)) << item.key();
  }
}

INSTANTIATE_TEST_SUITE_P(Types, StackedLayersTest, ::testing::Values(RNN_TANH, RNN_RELU, LSTM, GRU),
                         [](const auto& info) { return ModelType_Name(info.param); });

TEST(ModelTest, FormerParameterNamesAreTheMultiLayerModulesNames) {
  EXPECT_EQ(FormerParameterName("rnn.0.weight_ih_l0"), "rnn.weight_ih_l0");
  EXPECT_EQ(FormerParameterName("rnn.2.bias_hh_l0"), "rnn.bias_hh_l2");
  EXPECT_EQ(FormerParameterName("rnn.12.weight_hh_l0"), "rnn.weight_hh_l12");
  for (const char* unchanged : {"encoder.weight", "decoder_bias", "rnn.weight_ih_l1", "rnn.x.weight_ih_l0",
                                "rnn..weight_ih_l0", "rnn.1.weight_ih_l1", "encoder.0.weight_l0"}) {
    EXPECT_EQ(FormerParameterName(unchanged), unchanged);
  }
}

TEST(ModelTest, TransformerLayerDropoutIsAField) {
  // With every dropout 0, training mode computes what evaluation mode does; with the
  // default layer dropout (0.1) it does not, though model.dropout is 0.
  const torch::Tensor input = torch::randint(40, {9, 3}, torch::kInt64);
  for (bool off : {true, false}) {
    ModelConfig c = Config(TRANSFORMER);
    c.set_dropout(0.0f);
    if (off) c.set_layer_dropout(0.0f);
    torch::manual_seed(2);
    auto model = BuildModel(c, 40);
    ASSERT_TRUE(model.ok());
    RecurrentState none;
    (*model)->eval();
    torch::Tensor eval = (*model)->Logits(input, &none);
    (*model)->train();
    torch::Tensor train = (*model)->Logits(input, &none);
    EXPECT_EQ(torch::equal(eval, train), off) << (off ? "layer_dropout 0" : "layer_dropout unset (0.1)");
  }
  // The field changes only the dropout: the initial weights are the same.
  ModelConfig a = Config(TRANSFORMER), b = Config(TRANSFORMER);
  b.set_layer_dropout(0.0f);
  torch::manual_seed(4);
  auto ma = BuildModel(a, 40);
  torch::manual_seed(4);
  auto mb = BuildModel(b, 40);
  auto pa = (*ma)->parameters(), pb = (*mb)->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
}

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
