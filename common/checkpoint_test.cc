#include "common/checkpoint.h"

#include <cstdlib>

#include "common/config.h"
#include "common/corpus.h"
#include "common/file_io.h"
#include "common/trainer.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

JobSpec Spec(OptimizerType opt = ADAMW) {
  JobSpec spec;
  spec.mutable_data()->set_path("unused");
  spec.mutable_model()->set_emsize(8);
  spec.mutable_model()->set_nhid(8);
  spec.mutable_optimizer()->set_type(opt);
  spec.mutable_optimizer()->set_lr(0.01);
  ApplyDefaults(&spec);
  return spec;
}

Dictionary Vocab(int n) {
  std::vector<std::string> words;
  for (int i = 0; i < n; ++i) words.push_back("w" + std::to_string(i));
  return Dictionary::FromWords(words);
}

// A trainer that has taken a few AdamW steps, so optimizer state is non-trivial.
std::unique_ptr<Trainer> TrainedTrainer(const JobSpec& spec, const Dictionary& vocab) {
  auto trainer = Trainer::Create(spec, vocab);
  EXPECT_TRUE(trainer.ok());
  torch::Tensor data = torch::randint(vocab.size(), {40, 4}, torch::kInt64);
  JobSpec s = spec;
  EXPECT_TRUE((*trainer)->TrainEpoch(data).ok());
  return std::move(*trainer);
}

TEST(CheckpointTest, RoundTripIsBitExact) {
  Dictionary vocab = Vocab(30);
  auto trainer = TrainedTrainer(Spec(), vocab);
  absl::StatusOr<Checkpoint> ckpt = trainer->MakeCheckpoint();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const std::string path = TempDir() + "/rt.ckpt";
  ASSERT_TRUE(WriteCheckpointFile(path, *ckpt).ok());
  absl::StatusOr<Checkpoint> back = ReadCheckpointFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->tensors.size(), ckpt->tensors.size());
  for (const auto& [name, t] : ckpt->tensors) {
    ASSERT_TRUE(back->tensors.count(name)) << name;
    EXPECT_TRUE(torch::equal(back->tensors.at(name), t)) << name;
  }
  EXPECT_EQ(back->header.lr(), ckpt->header.lr());
  EXPECT_EQ(back->header.vocabulary_size(), 30);
  EXPECT_EQ(back->header.position().global_step(), trainer->position().global_step());
  // Serialising the parsed checkpoint again gives the same bytes.
  EXPECT_EQ(*SerializeCheckpoint(*back), *SerializeCheckpoint(*ckpt));

  // A fresh trainer restored from the file continues exactly like the original.
  auto restored = Trainer::Create(Spec(), vocab);
  ASSERT_TRUE(restored.ok());
  ASSERT_TRUE((*restored)->LoadCheckpoint(*back, /*weights_only=*/false).ok());
  for (const auto& item : (*restored)->model().named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), trainer->model().named_parameters()[item.key()])) << item.key();
  }
  torch::Tensor data = torch::randint(30, {20, 4}, torch::kInt64);
  ASSERT_TRUE(trainer->TrainEpoch(data).ok());
  ASSERT_TRUE((*restored)->TrainEpoch(data).ok());
  for (const auto& item : (*restored)->model().named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), trainer->model().named_parameters()[item.key()])) << item.key();
  }
}

TEST(CheckpointTest, DetectsTruncation) {
  auto trainer = TrainedTrainer(Spec(), Vocab(20));
  std::string bytes = *SerializeCheckpoint(*trainer->MakeCheckpoint());
  for (size_t keep : {size_t{0}, size_t{10}, bytes.size() / 2, bytes.size() - 1}) {
    absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(bytes.substr(0, keep), "cut.ckpt");
    ASSERT_FALSE(parsed.ok()) << keep;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss) << parsed.status();
    EXPECT_NE(parsed.status().message().find("cut.ckpt"), absl::string_view::npos);
  }
}

TEST(CheckpointTest, DetectsCorruption) {
  auto trainer = TrainedTrainer(Spec(), Vocab(20));
  const std::string bytes = *SerializeCheckpoint(*trainer->MakeCheckpoint());
  for (size_t at : {size_t{3}, size_t{30}, bytes.size() / 2, bytes.size() - 2}) {
    std::string bad = bytes;
    bad[at] ^= 0x10;
    absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(bad, "bad.ckpt");
    ASSERT_FALSE(parsed.ok()) << at;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss) << parsed.status();
  }
  absl::StatusOr<Checkpoint> junk = ParseCheckpoint(std::string(100, 'x'), "junk");
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.status().message().find("magic"), absl::string_view::npos);
}

TEST(CheckpointTest, RejectsAnotherVocabulary) {
  auto trainer = TrainedTrainer(Spec(), Vocab(20));
  Checkpoint ckpt = *trainer->MakeCheckpoint();
  std::vector<std::string> other_words(ckpt.header.vocabulary().begin(), ckpt.header.vocabulary().end());
  std::swap(other_words[0], other_words[1]);  // Same size, other ids.
  auto other = Trainer::Create(Spec(), Dictionary::FromWords(other_words));
  ASSERT_TRUE(other.ok());
  absl::Status s = (*other)->LoadCheckpoint(ckpt, false);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("another vocabulary"), absl::string_view::npos) << s;
}

TEST(CheckpointTest, RejectsAnotherModelShape) {
  Dictionary vocab = Vocab(20);
  auto trainer = TrainedTrainer(Spec(), vocab);
  Checkpoint ckpt = *trainer->MakeCheckpoint();
  JobSpec bigger = Spec();
  bigger.mutable_model()->set_nhid(12);
  auto other = Trainer::Create(bigger, vocab);
  ASSERT_TRUE(other.ok());
  absl::Status s = (*other)->LoadCheckpoint(ckpt, false);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("nhid"), absl::string_view::npos) << s;

  // Even with a forged header, a parameter of the wrong shape is refused, not loaded.
  auto model = BuildModel(bigger.model(), vocab.size());
  ASSERT_TRUE(model.ok());
  absl::Status direct = RestoreModel(ckpt, **model);
  EXPECT_EQ(direct.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(direct.message().find("in the checkpoint but"), absl::string_view::npos) << direct;
}

}  // namespace
}  // namespace ddlm
