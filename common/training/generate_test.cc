#include "common/training/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
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

// Replays greedy decoding from scratch: each word must be the argmax of NextWordLogits
// over the context as AppendToContext keeps it, for windows 1, 3 and 8 and 30 words
// (the context is cut several times).
TEST(GenerateTest, ATransformerSeesOnlyItsContextWindow) {
  auto model = Model(TRANSFORMER);
  for (int64_t window : {1, 3, 8}) {
    GenerateOptions options;
    options.words = 30;
    options.top_k = 1;
    options.max_context = window;
    options.prompt = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14};  // Longer than every window.
    auto ids = GenerateIds(*model, options);
    ASSERT_TRUE(ids.ok()) << ids.status();
    std::vector<int64_t> context(options.prompt.end() - std::min<int64_t>(window, 10), options.prompt.end());
    int cuts = 0;
    for (size_t i = 0; i < ids->size(); ++i) {
      ASSERT_LE(static_cast<int64_t>(context.size()), window);
      EXPECT_EQ(NextWordLogits(*model, context).argmax().item<int64_t>(), (*ids)[i])
          << "window " << window << ", word " << i;
      cuts += AppendToContext(context, (*ids)[i], window) ? 1 : 0;
    }
    EXPECT_GE(cuts, 3) << window;
  }
}

TEST(GenerateTest, AppendToContextKeepsTheLatestHalfWhenFull) {
  std::vector<int64_t> context = {1, 2, 3};
  EXPECT_FALSE(AppendToContext(context, 4, 4));
  EXPECT_EQ(context, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(AppendToContext(context, 5, 4));
  EXPECT_EQ(context, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_TRUE(AppendToContext(context = {7}, 8, 1));
  EXPECT_EQ(context, (std::vector<int64_t>{8}));
}

// The key/value cache against recomputing the context from scratch for every word, on
// text long enough to cut the context: the same words for the same seed, and each
// step's scores within 1e-5.
TEST(GenerateTest, TheCacheEqualsRecomputation) {
  auto model = Model(TRANSFORMER);
  GenerateOptions options;
  options.words = 40;
  options.seed = 77;
  options.max_context = 7;
  options.prompt = {3, 4, 5};
  options.use_cache = true;
  auto cached = GenerateIds(*model, options);
  options.use_cache = false;
  auto recomputed = GenerateIds(*model, options);
  ASSERT_TRUE(cached.ok() && recomputed.ok());
  EXPECT_EQ(*cached, *recomputed);
  // The scores, step by step, along the cached run's words.
  model->eval();
  torch::NoGradGuard no_grad;
  DecodeState state = model->InitDecodeState();
  std::vector<int64_t> context = options.prompt;
  torch::Tensor logits = model->DecodeLogits(torch::tensor(context).unsqueeze(1), &state);
  double worst = 0;
  for (int64_t word : *cached) {
    worst = std::max(worst, (logits[logits.size(0) - 1] - NextWordLogits(*model, context)).abs().max().item<double>());
    if (AppendToContext(context, word, options.max_context)) {
      state = model->InitDecodeState();
      logits = model->DecodeLogits(torch::tensor(context).unsqueeze(1), &state);
    } else {
      logits = model->DecodeLogits(torch::tensor({word}).unsqueeze(1), &state);
    }
  }
  EXPECT_LT(worst, 1e-5);
}

TEST(GenerateTest, ThePromptConditionsTheText) {
  for (ModelType type : {LSTM, TRANSFORMER}) {
    auto model = Model(type);
    {
      // An untrained model's distributions are nearly uniform, under which the same
      // draws pick the same words whatever the prompt: larger weights let it speak.
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.mul_(8);
    }
    GenerateOptions options;
    options.words = 25;
    options.prompt = {1, 2, 3};
    auto a = GenerateIds(*model, options);
    auto b = GenerateIds(*model, options);
    options.prompt = {30, 31, 32};
    auto c = GenerateIds(*model, options);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_EQ(*a, *b) << ModelType_Name(type);
    EXPECT_NE(*a, *c) << ModelType_Name(type);
    // Greedy decoding's first word is the argmax after reading the prompt.
    options.top_k = 1;
    options.words = 1;
    auto first = GenerateIds(*model, options);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->at(0), NextWordLogits(*model, {30, 31, 32}).argmax().item<int64_t>()) << ModelType_Name(type);
  }
}

TEST(GenerateTest, TopPOfOneIsPlainSamplingAndATinyOneIsGreedy) {
  for (ModelType type : {GRU, TRANSFORMER}) {
    auto model = Model(type);
    GenerateOptions options;
    options.words = 30;
    options.seed = 5;
    auto plain = GenerateIds(*model, options);
    // Just below 1, the nucleus filter runs and keeps all but a vanishing tail: the
    // same words as without it (at exactly 1 it is off).
    options.top_p = 1.0 - 1e-9;
    auto one = GenerateIds(*model, options);
    options.top_p = 1e-9;
    auto tiny = GenerateIds(*model, options);
    options.top_p = 1.0;
    options.top_k = 1;
    auto greedy = GenerateIds(*model, options);
    ASSERT_TRUE(plain.ok() && one.ok() && tiny.ok() && greedy.ok());
    EXPECT_EQ(*one, *plain) << ModelType_Name(type);
    EXPECT_EQ(*tiny, *greedy) << ModelType_Name(type);
    EXPECT_NE(*plain, *greedy) << ModelType_Name(type);  // Sampling is not greedy here.
  }
}

TEST(GenerateTest, TopPKeepsOnlyTheNucleus) {
  // A model's distribution at 0.5: every sampled word must be in the smallest set of
  // most likely words holding half the mass (recomputed from scratch).
  auto model = Model(LSTM);
  GenerateOptions options;
  options.words = 20;
  options.top_p = 0.5;
  options.prompt = {4};
  auto ids = GenerateIds(*model, options);
  ASSERT_TRUE(ids.ok());
  std::vector<int64_t> context = options.prompt;
  for (int64_t word : *ids) {
    torch::Tensor probs = torch::softmax(NextWordLogits(*model, context), 0);
    auto [sorted, order] = probs.sort(0, true);
    torch::Tensor before = sorted.cumsum(0) - sorted;
    const int64_t nucleus = std::max<int64_t>(1, before.lt(0.5).sum().item<int64_t>());
    torch::Tensor allowed = order.narrow(0, 0, nucleus);
    EXPECT_TRUE(allowed.eq(word).any().item<bool>()) << word;
    context.push_back(word);
  }
}

TEST(GenerateTest, StopsAfterTheStopWord) {
  auto model = Model(GRU);
  GenerateOptions options;
  options.words = 200;
  auto free = GenerateIds(*model, options);
  ASSERT_TRUE(free.ok());
  // Stop at the 5th word's id: generation ends at its first occurrence, which is kept.
  const int64_t stop = free->at(4);
  options.stop_id = stop;
  auto stopped = GenerateIds(*model, options);
  ASSERT_TRUE(stopped.ok());
  const size_t first = std::find(free->begin(), free->end(), stop) - free->begin();
  EXPECT_EQ(*stopped, std::vector<int64_t>(free->begin(), free->begin() + first + 1));
}

TEST(GenerateTest, OnWordSeesEachWordAndCanStop) {
  auto model = Model(LSTM);
  GenerateOptions options;
  options.words = 10;
  std::vector<int64_t> streamed;
  options.on_word = [&](int64_t id) {
    streamed.push_back(id);
    return streamed.size() < 4;
  };
  auto ids = GenerateIds(*model, options);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->size(), 4u);
  EXPECT_EQ(streamed, *ids);
}

TEST(GenerateTest, TheRepetitionPenaltyRepeatsLess) {
  auto model = Model(LSTM);
  GenerateOptions options;
  options.words = 60;
  options.top_k = 1;  // Greedy decoding of a random model loops on a few words.
  auto plain = GenerateIds(*model, options);
  options.repetition_penalty = 5.0;
  auto penalised = GenerateIds(*model, options);
  ASSERT_TRUE(plain.ok() && penalised.ok());
  auto distinct = [](std::vector<int64_t> v) {
    std::sort(v.begin(), v.end());
    return std::unique(v.begin(), v.end()) - v.begin();
  };
  EXPECT_GT(distinct(*penalised), distinct(*plain));
}

// Scoring one stream in bptt windows gives the loss Trainer::Evaluate reports for it:
// compared here with a direct computation over the same windows.
TEST(ScoreIdsTest, LogProbsAreThoseOfTheWindowsPasses) {
  for (ModelType type : {LSTM, TRANSFORMER}) {
    auto model = Model(type);
    std::vector<int64_t> ids;
    for (int i = 0; i < 23; ++i) ids.push_back((i * 7) % 40);
    auto scored = ScoreIds(*model, ids, /*bptt=*/5, /*top_n=*/3);
    ASSERT_TRUE(scored.ok()) << scored.status();
    ASSERT_EQ(scored->tokens.size(), 22u);
    torch::NoGradGuard no_grad;
    RecurrentState state = model->InitState(1);
    double loss = 0;
    for (int64_t i = 0; i < 22; i += 5) {
      const int64_t len = std::min<int64_t>(5, 22 - i);
      torch::Tensor input = torch::tensor(std::vector<int64_t>(ids.begin() + i, ids.begin() + i + len)).unsqueeze(1);
      torch::Tensor lp = model->Forward(input, &state);
      for (int64_t t = 0; t < len; ++t) {
        const double expected = lp[t][ids[i + t + 1]].item<double>();
        EXPECT_NEAR(scored->tokens[i + t].log_prob, expected, 1e-6);
        loss -= expected;
        // The top 3, most likely first, and the best is the row's argmax.
        ASSERT_EQ(scored->tokens[i + t].top.size(), 3u);
        EXPECT_EQ(scored->tokens[i + t].top[0].first, lp[t].argmax().item<int64_t>());
        EXPECT_GE(scored->tokens[i + t].top[0].second, scored->tokens[i + t].top[2].second);
      }
    }
    EXPECT_NEAR(scored->loss_sum, loss, 1e-6);
    EXPECT_NEAR(scored->perplexity(), std::exp(loss / 22), 1e-9 * scored->perplexity());
  }
  auto model = Model(GRU);
  EXPECT_EQ(ScoreIds(*model, {1}, 5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ScoreIds(*model, {1, 2}, 0).status().code(), absl::StatusCode::kInvalidArgument);
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
  options.max_context = 0;
  for (double top_p : {0.0, -0.5, 1.5, std::nan("")}) {
    options.top_p = top_p;
    auto bad = GenerateIds(*model, options);
    ASSERT_FALSE(bad.ok()) << top_p;
    EXPECT_NE(bad.status().message().find("top_p"), absl::string_view::npos);
  }
  options.top_p = 1;
  options.repetition_penalty = 0.5;
  EXPECT_NE(GenerateIds(*model, options).status().message().find("repetition_penalty"), absl::string_view::npos);
  options.repetition_penalty = 1;
  options.prompt = {40};  // The vocabulary is 0..39.
  EXPECT_NE(GenerateIds(*model, options).status().message().find("prompt"), absl::string_view::npos);
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
