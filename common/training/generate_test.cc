#include "common/training/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "gtest/gtest.h"

namespace ddlm {
namespace {

std::shared_ptr<LanguageModelImpl> Model(ModelType type) {
  torch::manual_seed(7);
  ModelConfig c;
  c.set_type(type);
  c.set_emsize(16);
  c.set_nhid(16);
  c.set_nlayers(1);
  c.set_dropout(0.0f);
  c.set_nhead(2);
  return *BuildModel(c, 40);
}

TEST(GenerateTest, SameSeedSameWords) {
  for (ModelType type : {LSTM, TRANSFORMER}) {
    auto model = Model(type);
    GenerateOptions options;
    options.words = 30;
    options.seed = 42;
    auto a = GenerateIds(*model, options);
    auto b = GenerateIds(*model, options);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b) << ModelType_Name(type);
    EXPECT_EQ(a->size(), 30u);
    options.seed = 43;
    EXPECT_NE(*GenerateIds(*model, options), *a) << ModelType_Name(type);
  }
}

TEST(GenerateTest, TopOneIsGreedy) {
  auto model = Model(GRU);
  GenerateOptions options;
  options.words = 10;
  options.top_k = 1;
  auto ids = GenerateIds(*model, options);
  ASSERT_TRUE(ids.ok());
  // Replaying the words through the model, each one must be the argmax of the
  // previous step's distribution.
  model->eval();
  torch::NoGradGuard no_grad;
  RecurrentState state = model->InitState(1);
  // The first input is the generator's first draw for this seed.
  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  torch::Tensor input = torch::randint(model->ntoken(), {1, 1}, gen, torch::kInt64);
  for (size_t i = 0; i < ids->size(); ++i) {
    torch::Tensor out = model->Forward(input, &state);
    EXPECT_EQ(out[0].argmax().item<int64_t>(), (*ids)[i]) << i;
    input = torch::full({1, 1}, (*ids)[i], torch::kInt64);
  }
}

TEST(GenerateTest, ATransformerSeesOnlyTheLatestMaxContextWords) {
  auto model = Model(TRANSFORMER);
  for (int64_t window : {1, 3}) {
    GenerateOptions options;
    options.words = 12;
    options.top_k = 1;
    options.max_context = window;
    auto ids = GenerateIds(*model, options);
    ASSERT_TRUE(ids.ok()) << ids.status();
    // Replaying: each word is the argmax of the last row for exactly the latest
    // `window` words (the first draw, then the generated ones).
    model->eval();
    torch::NoGradGuard no_grad;
    at::Generator gen = at::detail::createCPUGenerator(options.seed);
    std::vector<int64_t> seen = {torch::randint(model->ntoken(), {1, 1}, gen, torch::kInt64).item<int64_t>()};
    for (size_t i = 0; i < ids->size(); ++i) {
      const size_t from = seen.size() > static_cast<size_t>(window) ? seen.size() - window : 0;
      std::vector<int64_t> latest(seen.begin() + static_cast<std::ptrdiff_t>(from), seen.end());
      torch::Tensor context = torch::tensor(latest, torch::kInt64).unsqueeze(1);
      RecurrentState state = model->InitState(1);
      torch::Tensor out = model->Forward(context, &state);
      EXPECT_EQ(out[out.size(0) - 1].argmax().item<int64_t>(), (*ids)[i]) << "window " << window << ", word " << i;
      seen.push_back((*ids)[i]);
    }
  }
}

TEST(GenerateTest, RejectsBadOptions) {
  auto model = Model(LSTM);
  GenerateOptions options;
  options.temperature = 1e-4;
  auto ids = GenerateIds(*model, options);
  ASSERT_FALSE(ids.ok());
  EXPECT_NE(ids.status().message().find("temperature"), absl::string_view::npos);
  options.temperature = std::nan("");
  EXPECT_FALSE(GenerateIds(*model, options).ok());
  options.temperature = 1.0;
  options.words = -1;
  EXPECT_FALSE(GenerateIds(*model, options).ok());
  options.words = 1;
  options.top_k = -1;
  EXPECT_FALSE(GenerateIds(*model, options).ok());
  options.top_k = 0;
  options.max_context = -1;
  EXPECT_FALSE(GenerateIds(*model, options).ok());
}

TEST(GenerateTest, LowTemperatureDoesNotUnderflow) {
  auto model = Model(LSTM);
  GenerateOptions options;
  options.words = 20;
  options.temperature = 1e-3;  // exp(log_prob / T) alone would be all zeros.
  auto ids = GenerateIds(*model, options);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ids->size(), 20u);
}

}  // namespace
}  // namespace ddlm
