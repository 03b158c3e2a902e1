#include "common/training/checkpoint.h"

#include <cstdlib>

#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/base/file_io.h"
#include "common/training/trainer.h"
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
  spec.mutable_data()->set_batch_size(4);  // The tests' data has 4 columns.
  ApplyDefaults(&spec);
  return spec;
}

Dictionary Vocab(int n) {
  std::vector<std::string> words;
  for (int i = 0; i < n; ++i) words.push_back("w" + std::to_string(i));
  return Dictionary::FromWords(words);
}

// A trainer stopped after two AdamW steps in the middle of an epoch, so optimizer
// state, recurrent state and the generator (dropout) all matter for what comes next.
std::unique_ptr<Trainer> TrainedTrainer(const JobSpec& spec, const Dictionary& vocab, const torch::Tensor& data) {
  auto trainer = Trainer::Create(spec, vocab);
  EXPECT_TRUE(trainer.ok());
  std::atomic<bool> stop{false};
  (*trainer)->set_step_callback([&](const Trainer& t) {
    if (t.position().batch() == 2) stop = true;
    return absl::OkStatus();
  });
  absl::StatusOr<EpochSummary> summary = (*trainer)->TrainEpoch(data, &stop);
  EXPECT_TRUE(summary.ok());
  EXPECT_EQ(summary->batches, 2);
  (*trainer)->set_step_callback(nullptr);
  return std::move(*trainer);
}

std::unique_ptr<Trainer> TrainedTrainer(const JobSpec& spec, const Dictionary& vocab) {
  return TrainedTrainer(spec, vocab, torch::randint(vocab.size(), {120, 4}, torch::kInt64));
}

TEST(CheckpointTest, RoundTripIsBitExact) {
  Dictionary vocab = Vocab(30);
  torch::Tensor data = torch::randint(30, {120, 4}, torch::kInt64);
  auto trainer = TrainedTrainer(Spec(), vocab, data);
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

  // A fresh trainer restored from the file continues exactly like the original. The
  // generator (dropout masks) is process-wide, so the original continues first and the
  // restore, which resets the generator to the checkpoint's state, comes after.
  std::vector<torch::Tensor> original_before;
  for (const auto& p : trainer->model().parameters()) original_before.push_back(p.clone());
  absl::StatusOr<EpochSummary> a = trainer->TrainEpoch(data);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->batches, 2);  // 120 rows, bptt 35: windows 2 and 3 remain.

  auto restored = Trainer::Create(Spec(), vocab);
  ASSERT_TRUE(restored.ok());
  absl::Status loaded = (*restored)->LoadCheckpoint(*back, /*weights_only=*/false);
  ASSERT_TRUE(loaded.ok()) << loaded;
  EXPECT_EQ((*restored)->position().batch(), 2);
  auto restored_params = (*restored)->model().parameters();
  for (size_t i = 0; i < restored_params.size(); ++i) {
    EXPECT_TRUE(torch::equal(restored_params[i], original_before[i])) << i;
  }
  absl::StatusOr<EpochSummary> b = (*restored)->TrainEpoch(data);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->batches, 2);
  for (const auto& item : (*restored)->model().named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), trainer->model().named_parameters()[item.key()])) << item.key();
  }
}

TEST(CheckpointTest, CpuCheckpointsHoldNoCudaGeneratorAndGpuOnesLoadOnTheCpu) {
  Dictionary vocab = Vocab(30);
  std::unique_ptr<Trainer> trainer = TrainedTrainer(Spec(), vocab);
  absl::StatusOr<Checkpoint> c = trainer->MakeCheckpoint();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->tensors.count("rng/cpu"), 1u);
  EXPECT_EQ(c->tensors.count("rng/cuda"), 0u);
  // What a GPU trainer adds (a CUDA generator's state: seed and offset bytes) is
  // ignored by a CPU trainer, which resumes the same as from the CPU checkpoint.
  Checkpoint from_gpu = *c;
  from_gpu.tensors["rng/cuda"] = torch::zeros({16}, torch::kUInt8);
  absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(*SerializeCheckpoint(from_gpu), "gpu checkpoint");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  torch::Tensor data = torch::randint(vocab.size(), {60, 4}, torch::kInt64);
  auto a = Trainer::Create(Spec(), vocab);
  auto b = Trainer::Create(Spec(), vocab);
  // Each loads, then trains at once: the loads restore the same generator state.
  ASSERT_TRUE((*a)->LoadCheckpoint(*parsed, /*weights_only=*/false).ok());
  ASSERT_TRUE((*a)->TrainEpoch(data).ok());
  ASSERT_TRUE((*b)->LoadCheckpoint(*c, /*weights_only=*/false).ok());
  ASSERT_TRUE((*b)->TrainEpoch(data).ok());
  EXPECT_TRUE(torch::equal((*a)->model().parameters()[0], (*b)->model().parameters()[0]));
}

TEST(CheckpointTest, DetectsTruncation) {
  auto trainer = TrainedTrainer(Spec(), Vocab(20));
  const std::string bytes = *SerializeCheckpoint(*trainer->MakeCheckpoint());
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

// Frames a header and tensor area exactly as the file format does, with a valid CRC,
// so that only the index checks can catch what is wrong.
std::string Frame(const CheckpointHeader& header, const std::string& area) {
  std::string header_bytes = header.SerializeAsString();
  std::string out = "DDLMCKPT";
  auto put = [&out](uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  put(kCheckpointVersion, 4);
  put(header_bytes.size(), 8);
  out += header_bytes + area;
  put(Crc32(out), 4);
  return out;
}

TEST(CheckpointTest, ValidatesTheTensorIndexEvenWithAGoodCrc) {
  CheckpointHeader header;
  TensorEntry* e = header.add_tensors();
  e->set_name("param/x");
  e->set_dtype(FLOAT32);
  e->add_shape(2);
  e->set_nbytes(8);
  const std::string area(8, '\0');
  ASSERT_TRUE(ParseCheckpoint(Frame(header, area), "ok").ok());

  auto expect_rejected = [&](const CheckpointHeader& h, const std::string& why) {
    absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(Frame(h, area), "forged");
    ASSERT_FALSE(parsed.ok()) << why;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss) << why;
  };
  CheckpointHeader past_end = header;
  past_end.mutable_tensors(0)->set_offset(4);
  expect_rejected(past_end, "runs past the tensor area");
  CheckpointHeader overflow = header;
  overflow.mutable_tensors(0)->set_shape(0, int64_t{1} << 33);
  overflow.mutable_tensors(0)->add_shape(int64_t{1} << 31);
  overflow.mutable_tensors(0)->set_nbytes(0);
  expect_rejected(overflow, "shape overflows");
  CheckpointHeader negative = header;
  negative.mutable_tensors(0)->set_shape(0, -2);
  expect_rejected(negative, "negative dimension");
  CheckpointHeader duplicate = header;
  *duplicate.add_tensors() = header.tensors(0);
  expect_rejected(duplicate, "duplicate name");
  CheckpointHeader bad_dtype = header;
  bad_dtype.mutable_tensors(0)->set_dtype(DTYPE_UNSPECIFIED);
  expect_rejected(bad_dtype, "unknown dtype");
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

TEST(CheckpointTest, LoadsCheckpointsWrittenWithMultiLayerRnnNames) {
  // Before the recurrent layers were one module each, a checkpoint named them
  // "param/rnn.weight_ih_l1"; such a checkpoint still loads, into the same weights.
  Dictionary vocab = Vocab(20);
  auto trainer = TrainedTrainer(Spec(), vocab);
  Checkpoint ckpt = *trainer->MakeCheckpoint();
  Checkpoint former = ckpt;
  former.tensors.clear();
  int renamed = 0;
  for (const auto& [name, tensor] : ckpt.tensors) {
    const std::string param = name.rfind("param/", 0) == 0 ? name.substr(6) : "";
    if (!param.empty() && FormerParameterName(param) != param) {
      former.tensors["param/" + FormerParameterName(param)] = tensor;
      ++renamed;
    } else {
      former.tensors[name] = tensor;
    }
  }
  EXPECT_EQ(renamed, 8);  // 2 layers x (weight_ih, weight_hh, bias_ih, bias_hh).
  EXPECT_EQ(former.tensors.count("param/rnn.weight_hh_l1"), 1u);
  auto loaded = Trainer::Create(Spec(), vocab);
  ASSERT_TRUE(loaded.ok());
  ASSERT_TRUE((*loaded)->LoadCheckpoint(former, /*weights_only=*/false).ok());
  auto a = trainer->model().parameters();
  auto b = (*loaded)->model().parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
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
