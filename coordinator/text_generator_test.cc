#include "coordinator/text_generator.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "common/training/checkpoint.h"
#include "common/training/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

// A small Transformer checkpoint with a 30-word vocabulary, trained (nominally) at bptt 3.
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
  Checkpoint c;
  *c.header.mutable_spec()->mutable_model() = config;
  c.header.mutable_spec()->mutable_data()->set_bptt(3);
  for (int i = 0; i < 30; ++i) c.header.add_vocabulary("w" + std::to_string(i));
  CaptureModel(*model, nullptr, &c);
  EXPECT_TRUE(WriteCheckpointFile(path, c).ok());
  return path;
}

GenerateRequest Request(int64_t words) {
  GenerateRequest r;
  r.set_words(words);
  r.set_top_k(1);
  return r;
}

GenerateOptions Options(int64_t words) {
  GenerateOptions o;
  o.words = words;
  o.top_k = 1;
  return o;
}

TEST(TextGeneratorTest, ParsesWithUpstreamsDefaultsAndNamesBadFields) {
  TextGenerator generator(TextGeneratorOptions{});
  auto options = generator.ParseRequest(GenerateRequest());
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->words, 100);
  EXPECT_EQ(options->temperature, 1.0);
  EXPECT_EQ(options->seed, 1111u);
  absl::Status too_many = generator.ParseRequest(Request(10001)).status();
  EXPECT_EQ(too_many.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_many.message(), HasSubstr("[1, 10000]"));
  GenerateRequest cold;
  cold.set_temperature(0);
  EXPECT_THAT(generator.ParseRequest(cold).status().message(), HasSubstr("temperature"));
  GenerateRequest negative;
  negative.set_top_k(-1);
  EXPECT_THAT(generator.ParseRequest(negative).status().message(), HasSubstr("top_k"));
}

TEST(TextGeneratorTest, SamplesWordsFromTheCheckpointsVocabulary) {
  const std::string path = WriteCheckpoint("sample");
  TextGenerator generator(TextGeneratorOptions{});
  auto response = generator.Generate(path, "e0002-s00000010", Options(25));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->checkpoint_id(), "e0002-s00000010");
  // 25 words: 20 on the first line, as generate.py writes them.
  const std::string& text = response->text();
  ASSERT_NE(text.find('\n'), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(text.find('\n')), ' '), 19);
  EXPECT_EQ(std::count(text.begin(), text.end(), 'w'), 25);
  EXPECT_EQ(generator.Generate("/no/such.ckpt", "x", Options(5)).status().code(), absl::StatusCode::kNotFound);
}

TEST(TextGeneratorTest, AtMostMaxRunningSamplingsAtOnce) {
  const std::string path = WriteCheckpoint("busy");
  TextGenerator* self = nullptr;
  absl::Status second;
  int calls = 0;
  TextGeneratorOptions options;
  options.max_running = 1;
  options.while_running_for_testing = [&] {
    if (++calls > 1) return;
    // The one slot is taken: another request is turned away at once.
    second = self->Generate(path, "x", Options(5)).status();
  };
  TextGenerator generator(options);
  self = &generator;
  ASSERT_TRUE(generator.Generate(path, "x", Options(5)).ok());
  EXPECT_EQ(second.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(second.message(), HasSubstr("1 generation(s) already running"));
  // The slot is free again.
  EXPECT_TRUE(generator.Generate(path, "x", Options(5)).ok());
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace ddlm
