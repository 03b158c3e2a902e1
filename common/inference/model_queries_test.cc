#include "common/inference/model_queries.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/inference/render.h"
#include "common/training/checkpoint.h"
#include "common/training/generate.h"
#include "common/training/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

// A small model over a vocabulary of w0..w27, <eos> and <unk>, trained (nominally) at
// bptt 6. Larger weights than at initialisation make its distributions peaked.
TextModel Model(ModelType type, double scale = 6) {
  torch::manual_seed(3);
  ModelConfig config;
  config.set_type(type);
  config.set_emsize(16);
  config.set_nhid(16);
  config.set_nlayers(2);
  config.set_nhead(2);
  config.set_dropout(0.0f);
  std::shared_ptr<LanguageModelImpl> model = *BuildModel(config, 30);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.mul_(scale);
  }
  Checkpoint c;
  *c.header.mutable_spec()->mutable_model() = config;
  c.header.mutable_spec()->mutable_data()->set_bptt(6);
  std::vector<std::string> words;
  for (int i = 0; i < 28; ++i) words.push_back(absl::StrCat("w", i));
  words.push_back("<eos>");
  words.push_back("<unk>");
  for (const std::string& w : words) c.header.add_vocabulary(w);
  c.header.set_vocabulary_fingerprint(Dictionary::FromWords(words).Fingerprint());
  CaptureModel(*model, nullptr, &c);
  absl::StatusOr<TextModel> loaded = LoadTextModel(c);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return std::move(*loaded);
}

TEST(TokenizeTest, ReadsTextAsACorpusFileAndPromptsWithoutTheFinalEos) {
  TextModel m = Model(LSTM);
  auto text = TokenizeText(m, "w1 w2 zebra\nw3 zebra w4", "text");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->ids, (std::vector<int64_t>{1, 2, 29, 28, 3, 29, 4, 28}));
  EXPECT_EQ(text->unknown_words, (std::vector<std::string>{"zebra"}));
  auto prompt = TokenizePrompt(m, "w1 w2 zebra\nw3", "prompt");
  ASSERT_TRUE(prompt.ok());
  EXPECT_EQ(prompt->ids, (std::vector<int64_t>{1, 2, 29, 28, 3}));
  EXPECT_EQ(TokenizePrompt(m, "w1\n", "prompt")->ids, (std::vector<int64_t>{1, 28}));
  // Nothing to condition on.
  for (const char* bad : {"", "  \n ", "zebra okapi"}) {
    auto r = TokenizePrompt(m, bad, "prompt");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("prompt")) << bad;
  }
  EXPECT_THAT(TokenizeText(m, "w1 \xff", "text").status().message(), HasSubstr("text"));
}

GenerateRequest Request(const std::string& prompt, int words) {
  GenerateRequest r;
  r.set_prompt(prompt);
  r.set_words(words);
  r.set_seed(7);
  r.set_temperature(2.0);  // A small model's distributions are peaked: spread them.
  return r;
}

TEST(RunGenerateTest, ThePromptConditionsTheTextAndUnknownWordsAreListed) {
  for (ModelType type : {LSTM, TRANSFORMER}) {
    TextModel m = Model(type, 2);
    auto a = RunGenerate(m, Request("w1 w2 w3", 30), {});
    auto b = RunGenerate(m, Request("w1 w2 w3", 30), {});
    auto c = RunGenerate(m, Request("w20 w21 w22", 30), {});
    ASSERT_TRUE(a.ok() && b.ok() && c.ok()) << a.status() << c.status();
    EXPECT_EQ(a->text(), b->text());
    // Greedy decoding's first word is what the model expects after each prompt (the
    // two differ here), so the prompt reached the model.
    for (const char* prompt : {"w1 w2 w3", "w20 w21 w22"}) {
      GenerateRequest greedy = Request(prompt, 1);
      greedy.set_top_k(1);
      auto first = RunGenerate(m, greedy, {});
      ASSERT_TRUE(first.ok());
      const std::vector<int64_t> ids = TokenizePrompt(m, prompt, "prompt")->ids;
      EXPECT_EQ(first->text(), m.vocabulary.Word(NextWordLogits(*m.model, ids).argmax().item<int64_t>()) + " ")
          << ModelType_Name(type) << " " << prompt;
    }
    EXPECT_GT((NextWordLogits(*m.model, {1, 2, 3}) - NextWordLogits(*m.model, {20, 21, 22})).abs().max().item<double>(),
              1e-3)
        << ModelType_Name(type);
    EXPECT_EQ(a->words(), 30);
    EXPECT_EQ(std::vector<std::string>(absl::StrSplit(a->text(), absl::ByAnyChar(" \n"), absl::SkipEmpty())).size(),
              30u);
    auto unknown = RunGenerate(m, Request("w1 zebra w2 zebra okapi", 5), {});
    ASSERT_TRUE(unknown.ok());
    EXPECT_THAT(unknown->unknown_words(), ::testing::ElementsAre("zebra", "okapi"));
  }
}

TEST(RunGenerateTest, StreamsThePiecesOfTheSameText) {
  TextModel m = Model(TRANSFORMER);
  GenerateRequest request = Request("w5 w6 zebra", 45);  // Longer than the window: cut twice or more.
  auto whole = RunGenerate(m, request, {});
  ASSERT_TRUE(whole.ok());
  std::vector<GenerateResponse> pieces;
  auto streamed = RunGenerate(m, request, {}, [&](const GenerateResponse& p) {
    pieces.push_back(p);
    return true;
  });
  ASSERT_TRUE(streamed.ok());
  ASSERT_EQ(pieces.size(), 45u);
  std::string joined;
  for (const GenerateResponse& p : pieces) joined += p.text();
  EXPECT_EQ(joined, whole->text());
  EXPECT_THAT(pieces.front().unknown_words(), ::testing::ElementsAre("zebra"));
  EXPECT_EQ(pieces.back().words(), 45);
  // A sink that says stop ends it.
  int seen = 0;
  auto stopped = RunGenerate(m, request, {}, [&](const GenerateResponse&) { return ++seen < 3; });
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->words(), 3);
}

TEST(RunGenerateTest, TopPOfOneIsPlainSampling) {
  TextModel m = Model(TRANSFORMER, 2);
  GenerateRequest plain = Request("w1 w2", 40);
  GenerateRequest one = plain;
  one.set_top_p(1.0);
  GenerateRequest nucleus = plain;
  nucleus.set_top_p(0.3);
  auto a = RunGenerate(m, plain, {});
  auto b = RunGenerate(m, one, {});
  auto c = RunGenerate(m, nucleus, {});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->text(), b->text());
  EXPECT_NE(a->text(), c->text());  // The filter does act below 1.
}

TEST(RunGenerateTest, StopsAtEos) {
  TextModel m = Model(LSTM);
  GenerateRequest request = Request("w1", 400);
  request.set_temperature(3.0);  // Spread the draws: <eos> comes soon enough.
  auto free = RunGenerate(m, request, {});
  ASSERT_TRUE(free.ok());
  ASSERT_THAT(free->text(), HasSubstr("<eos>"));
  request.set_stop_at_eos(true);
  auto stopped = RunGenerate(m, request, {});
  ASSERT_TRUE(stopped.ok());
  EXPECT_TRUE(stopped->stopped_at_eos());
  EXPECT_EQ(stopped->text(), free->text().substr(0, free->text().find("<eos>") + 6));
}

TEST(RunGenerateTest, NamesTheFieldAtFault) {
  TextModel m = Model(LSTM);
  auto expect_field = [&](GenerateRequest r, const std::string& field) {
    auto out = RunGenerate(m, r, {});
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(out.status().message(), HasSubstr(field));
  };
  GenerateRequest r = Request("w1", 5);
  r.set_temperature(std::numeric_limits<double>::infinity());
  expect_field(r, "temperature");
  r = Request("w1", 5);
  r.set_repetition_penalty(1e300);  // Finite, but infinite as a float.
  expect_field(r, "repetition_penalty");
  r = Request("w1", 5);
  r.set_top_p(0);
  expect_field(r, "top_p");
  r.set_top_p(1.5);
  expect_field(r, "top_p");
  r = Request("w1", 5);
  r.set_repetition_penalty(0.5);
  expect_field(r, "repetition_penalty");
  expect_field(Request("zebra", 5), "prompt");
  expect_field(Request("  ", 5), "prompt");
  expect_field(Request("w1", 0), "words");
  QueryLimits small;
  small.max_text_bytes = 4;
  auto big = RunGenerate(m, Request("w1 w2 w3", 5), small);
  EXPECT_THAT(big.status().message(), HasSubstr("prompt is 8 bytes"));
}

TEST(RunScoreTest, ScoresEachTokenAndListsTheTopWords) {
  for (ModelType type : {LSTM, TRANSFORMER}) {
    TextModel m = Model(type);
    ScoreTextRequest request;
    request.set_text("w1 w2 w3 w4 zebra w5 w6 w7 w8\nw9 w10");
    request.set_top_n(4);
    auto scored = RunScore(m, request, request.text(), {});
    ASSERT_TRUE(scored.ok()) << scored.status();
    // 13 tokens (two <eos>), 12 scored.
    ASSERT_EQ(scored->scored_tokens(), 12);
    ASSERT_EQ(scored->tokens_size(), 12);
    EXPECT_EQ(scored->first_word(), "w1");
    EXPECT_EQ(scored->tokens(3).word(), "<unk>");
    EXPECT_THAT(scored->unknown_words(), ::testing::ElementsAre("zebra"));
    double sum = 0;
    for (const ScoredToken& t : scored->tokens()) {
      sum -= t.log_prob();
      ASSERT_EQ(t.top_size(), 4);
      EXPECT_GE(t.top(0).log_prob(), t.top(3).log_prob());
      EXPECT_NEAR(t.top(0).probability(), std::exp(t.top(0).log_prob()), 1e-12);
      EXPECT_LE(t.log_prob(), t.top(0).log_prob() + 1e-9);  // Nothing beats the top word.
    }
    EXPECT_NEAR(scored->loss(), sum / 12, 1e-9);
    EXPECT_NEAR(scored->perplexity(), std::exp(sum / 12), 1e-9 * scored->perplexity());
    // The same text as a file's contents: the same totals, no list unless asked.
    ScoreTextRequest file;
    file.set_file("/some/test.txt");
    auto totals = RunScore(m, file, request.text(), {});
    ASSERT_TRUE(totals.ok());
    EXPECT_EQ(totals->tokens_size(), 0);
    EXPECT_DOUBLE_EQ(totals->perplexity(), scored->perplexity());
    // The heatmap and the table come from the same answer.
    auto heatmap = LogProbHeatmap(*scored);
    ASSERT_TRUE(heatmap.ok());
    EXPECT_EQ(heatmap->x_labels.size(), 12u);
    EXPECT_EQ(heatmap->y_labels.size(), 4u);
    EXPECT_EQ(heatmap->values.size(), 48u);
    EXPECT_TRUE(CheckHeatmap(*heatmap).ok());
    EXPECT_THAT(ScoreTable(*scored), HasSubstr("perplexity"));
  }
}

TEST(RunScoreTest, NamesTheFieldAtFault) {
  TextModel m = Model(GRU);
  ScoreTextRequest r;
  EXPECT_THAT(RunScore(m, r, "", {}).status().message(), HasSubstr("text or file"));
  r.set_text("");
  EXPECT_THAT(RunScore(m, r, r.text(), {}).status().message(), HasSubstr("text is empty"));
  r.set_text("w1 w2");
  r.set_top_n(101);
  EXPECT_THAT(RunScore(m, r, r.text(), {}).status().message(), HasSubstr("top_n"));
  r.set_top_n(0);
  QueryLimits limits;
  limits.max_listed_tokens = 1;
  EXPECT_THAT(RunScore(m, r, r.text(), limits).status().message(), HasSubstr("tokens: false"));
  r.set_tokens(false);
  EXPECT_TRUE(RunScore(m, r, r.text(), limits).ok());
  // The listed reply's size is bounded before the work.
  QueryLimits reply;
  reply.max_reply_bytes = 100;
  r.set_tokens(true);
  r.set_top_n(5);
  EXPECT_THAT(RunScore(m, r, r.text(), reply).status().message(), HasSubstr("MiB"));
}

TEST(RunAttentionTest, RowsSumToOneAndTheCausalZerosHold) {
  TextModel m = Model(TRANSFORMER);
  AttentionRequest request;
  request.set_text("w1 w2 zebra w3");  // 5 tokens with <eos>.
  request.add_layers(1);
  auto out = RunAttention(m, request, {});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->tokens_size(), 5);
  ASSERT_EQ(out->maps_size(), 2);  // Layer 1, both heads.
  for (const AttentionMap& map : out->maps()) {
    EXPECT_EQ(map.layer(), 1);
    ASSERT_EQ(map.weights_size(), 25);
    for (int i = 0; i < 5; ++i) {
      double row = 0;
      for (int j = 0; j < 5; ++j) {
        row += map.weights(i * 5 + j);
        if (j > i) EXPECT_EQ(map.weights(i * 5 + j), 0.0f);
      }
      EXPECT_NEAR(row, 1.0, 1e-5);
    }
  }
  auto heatmap = AttentionHeatmap(*out, 1, 0);
  ASSERT_TRUE(heatmap.ok());
  EXPECT_EQ(heatmap->x_labels[2], "<unk>");
  EXPECT_EQ(AttentionHeatmap(*out, 0, 0).status().code(), absl::StatusCode::kNotFound);

  // A repeated index is answered once.
  request.clear_layers();
  for (int i = 0; i < 1000; ++i) request.add_layers(1);
  request.add_heads(0);
  request.add_heads(0);
  auto once = RunAttention(m, request, {});
  ASSERT_TRUE(once.ok()) << once.status();
  EXPECT_EQ(once->maps_size(), 1);
  // A reply larger than one message may carry is refused before it is built.
  QueryLimits small;
  small.max_reply_bytes = 5 * 5 * 4 * 2 - 1;  // Just under both heads of one layer.
  request.clear_heads();
  EXPECT_THAT(RunAttention(m, request, small).status().message(), HasSubstr("layers x heads"));
  request.clear_layers();
  request.add_layers(2);
  EXPECT_THAT(RunAttention(m, request, {}).status().message(), HasSubstr("layers"));
  request.clear_layers();
  request.add_heads(2);
  EXPECT_THAT(RunAttention(m, request, {}).status().message(), HasSubstr("heads"));
  request.clear_heads();
  request.set_text("w1 w2 w3 w4 w5 w6");  // 7 tokens with <eos>: over bptt 6.
  EXPECT_THAT(RunAttention(m, request, {}).status().message(), HasSubstr("bptt"));
  TextModel rnn = Model(LSTM);
  EXPECT_EQ(RunAttention(rnn, request, {}).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ddlm
