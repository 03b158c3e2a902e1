#include "coordinator/model_query_runner.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string>

#include "common/base/corpus.h"
#include "common/base/subprocess.h"
#include "common/training/checkpoint.h"
#include "common/training/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

// A small Transformer checkpoint with a 30-word vocabulary (w0..w27, <eos>, <unk>), trained (nominally) at bptt 3.
std::string WriteCheckpoint(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp ? tmp : "/tmp") + "/" + name + ".ckpt";
  torch::manual_seed(3);
  ModelConfig config;
  config.set_type(TRANSFORMER);
  config.set_emsize(16);
  config.set_nhid(16);
  config.set_nlayers(1);
  config.set_nhead(2);
  config.set_dropout(0.0f);
  std::shared_ptr<LanguageModelImpl> model = *BuildModel(config, 30);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.mul_(3);  // Less uniform than at initialisation.
  }
  Checkpoint c;
  *c.header.mutable_spec()->mutable_model() = config;
  c.header.mutable_spec()->mutable_data()->set_bptt(3);
  std::vector<std::string> words;
  for (int i = 0; i < 28; ++i) words.push_back("w" + std::to_string(i));
  words.push_back("<eos>");
  words.push_back("<unk>");
  for (const std::string& w : words) c.header.add_vocabulary(w);
  c.header.set_vocabulary_fingerprint(Dictionary::FromWords(words).Fingerprint());
  CaptureModel(*model, nullptr, &c);
  EXPECT_TRUE(WriteCheckpointFile(path, c).ok());
  return path;
}

GenerateRequest Request(int64_t words) {
  GenerateRequest r;
  r.set_words(words);
  return r;
}

TEST(ModelQueryRunnerTest, SamplesWordsFromTheCheckpointsVocabulary) {
  const std::string path = WriteCheckpoint("sample");
  ModelQueryRunner runner(ModelQueryOptions{});
  auto response = runner.Generate(path, "e0002-s00000010", Request(25));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->checkpoint_id(), "e0002-s00000010");
  // 25 words: 20 on the first line, as generate.py writes them.
  const std::string& text = response->text();
  ASSERT_NE(text.find('\n'), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(text.find('\n')), ' '), 19);
  EXPECT_EQ(std::count(text.begin(), text.end(), ' ') + std::count(text.begin(), text.end(), '\n'), 25);
  EXPECT_EQ(runner.Generate("/no/such.ckpt", "x", Request(5)).status().code(), absl::StatusCode::kNotFound);
  // Streaming: the first piece names the checkpoint, and the pieces make the same text.
  std::string joined;
  std::string first_id;
  auto streamed = runner.Generate(path, "e0002-s00000010", Request(25), [&](const GenerateResponse& piece) {
    if (joined.empty()) first_id = piece.checkpoint_id();
    joined += piece.text();
    return true;
  });
  ASSERT_TRUE(streamed.ok());
  EXPECT_EQ(joined, text);
  EXPECT_EQ(first_id, "e0002-s00000010");
}

// ddlm_generate and the Generate RPC answer with the same code: over text much longer
// than the window (bptt 3), with a prompt and every sampling option, the same words.
TEST(ModelQueryRunnerTest, TheStandaloneBinaryGivesTheRpcsWords) {
  const std::string path = WriteCheckpoint("both");
  ModelQueryRunner runner(ModelQueryOptions{});
  GenerateRequest request = Request(60);
  request.set_prompt("w1 w2 w3 w4 w5");
  request.set_seed(9);
  request.set_temperature(0.8);
  request.set_top_k(20);
  request.set_top_p(0.9);
  request.set_repetition_penalty(1.2);
  auto rpc = runner.Generate(path, "x", request);
  ASSERT_TRUE(rpc.ok()) << rpc.status();
  std::string out;
  ASSERT_EQ(RunBinary({"worker/ddlm_generate", "--checkpoint=" + path, "--words=60", "--outf=-", "--seed=9",
                       "--temperature=0.8", "--top_k=20", "--top_p=0.9", "--repetition_penalty=1.2",
                       "--prompt=w1 w2 w3 w4 w5"},
                      &out),
            0)
      << out;
  // Without the binary's log lines (BLAS set-up, on stderr); 60 words end with a line break.
  EXPECT_EQ(WithoutGlogLines(out), rpc->text());
}

TEST(ModelQueryRunnerTest, AtMostMaxRunningQueriesAtOnceOfAnyKind) {
  const std::string path = WriteCheckpoint("busy");
  ModelQueryRunner* self = nullptr;
  absl::Status second, third;
  int calls = 0;
  ModelQueryOptions options;
  options.max_running = 1;
  options.while_running_for_testing = [&] {
    if (++calls > 1) return;
    // The one slot is taken: other requests are turned away at once.
    second = self->Generate(path, "x", Request(5)).status();
    ScoreTextRequest score;
    score.set_text("w1 w2");
    // Turned away before it reads its text.
    third = self->Score(path, "x", score,
                        [&]() -> absl::StatusOr<std::string> {
                          ADD_FAILURE() << "a query turned away read its text";
                          return score.text();
                        })
                .status();
  };
  ModelQueryRunner runner(options);
  self = &runner;
  ASSERT_TRUE(runner.Generate(path, "x", Request(5)).ok());
  EXPECT_EQ(second.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(second.message(), HasSubstr("1 model queries"));
  // The slot is free again, for every kind.
  EXPECT_TRUE(runner.Generate(path, "x", Request(5)).ok());
  AttentionRequest attention;
  attention.set_text("w1 w2");
  auto weights = runner.Attention(path, "id", attention);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(weights->checkpoint_id(), "id");
  EXPECT_EQ(weights->tokens_size(), 3);  // w1 w2 <eos>
}

}  // namespace
}  // namespace ddlm
