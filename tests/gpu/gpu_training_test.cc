// Training on a GPU against the CPU: the same model from the same weights, the BF16
// path, checkpoints moved between CPU and GPU, exact resume on the GPU, and an
// out-of-memory attempt that leaves the process usable. Every test skips (saying so)
// where no CUDA device is visible: CI builds and runs this binary on CPU machines;
// tests/gpu/run.sh runs it on the accelerator machine.

#include <ATen/Context.h>

#include <cmath>
#include <cstdio>

#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/testing/quickstart_corpus.h"
#include "common/training/batching.h"
#include "common/training/checkpoint.h"
#include "common/training/device.h"
#include "common/training/trainer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

#define SKIP_WITHOUT_GPU()                                                  \
  if (torch::cuda::device_count() == 0) {                                   \
    GTEST_SKIP() << "no CUDA device visible (build with --config=cuda and " \
                    "run on a GPU: tests/gpu/run.sh)";                      \
  }

const Corpus& Quickstart() { return QuickstartCorpus(); }

JobSpec Spec(ModelType type, float dropout = 0.0f) {
  JobSpec spec;
  spec.mutable_data()->set_path("configs/quickstart_data");
  spec.mutable_model()->set_type(type);
  spec.mutable_model()->set_emsize(64);
  spec.mutable_model()->set_nhid(64);
  spec.mutable_model()->set_nlayers(2);
  spec.mutable_model()->set_dropout(dropout);
  // The Transformer's layers have a dropout of their own (0.1 by default, as upstream's);
  // the CPU and CUDA generators draw different masks, so it goes with `dropout`.
  if (type == TRANSFORMER) spec.mutable_model()->set_layer_dropout(dropout);
  spec.mutable_optimizer()->set_lr(type == TRANSFORMER ? 1.0 : (type == RNN_TANH || type == RNN_RELU) ? 5.0 : 20.0);
  spec.mutable_schedule()->set_max_batches_per_epoch(20);
  spec.mutable_schedule()->set_log_interval(10);
  ApplyDefaults(&spec);
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
  return spec;
}

std::vector<double> StepLosses(Trainer& trainer, const torch::Tensor& data) {
  std::vector<double> losses;
  trainer.set_step_callback([&](const Trainer& t) {
    losses.push_back(t.last_step_loss());
    return absl::OkStatus();
  });
  absl::StatusOr<EpochSummary> summary = trainer.TrainEpoch(data);
  EXPECT_TRUE(summary.ok()) << summary.status();
  trainer.set_step_callback(nullptr);
  return losses;
}

class FullFloat32 {
 public:
  // TF32 would round matrix products to 10-bit mantissas; upstream's comparison is FP32.
  FullFloat32() {
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
};

class GpuVsCpuTest : public ::testing::TestWithParam<ModelType> {};

TEST_P(GpuVsCpuTest, LossAfter20StepsMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  FullFloat32 fp32;
  const JobSpec spec = Spec(GetParam());
  torch::Tensor train = Batchify(Quickstart().train, spec.data().batch_size());
  auto cpu = Trainer::Create(spec, Quickstart().dictionary, torch::kCPU);
  auto gpu = Trainer::Create(spec, Quickstart().dictionary, *ResolveDevice("cuda:0"));
  ASSERT_TRUE(cpu.ok() && gpu.ok());
  for (const torch::Tensor& p : (*gpu)->model().parameters()) EXPECT_TRUE(p.is_cuda());
  std::vector<double> on_cpu = StepLosses(**cpu, train);
  std::vector<double> on_gpu = StepLosses(**gpu, train);
  ASSERT_EQ(on_cpu.size(), 20u);
  ASSERT_EQ(on_gpu.size(), 20u);
  double worst = 0;
  for (size_t i = 0; i < on_cpu.size(); ++i) {
    worst = std::max(worst, std::abs(on_gpu[i] - on_cpu[i]) / on_cpu[i]);
  }
  std::printf(
      "%s: step-1 loss cpu %.7f gpu %.7f (relative %.2e); step-20 loss cpu %.6f gpu %.6f (relative %.2e); "
      "largest over 20 steps %.2e\n",
      ModelType_Name(GetParam()).c_str(), on_cpu.front(), on_gpu.front(),
      std::abs(on_gpu.front() - on_cpu.front()) / on_cpu.front(), on_cpu.back(), on_gpu.back(),
      std::abs(on_gpu.back() - on_cpu.back()) / on_cpu.back(), worst);
  // The first step's loss is one forward pass of the same weights: only the order of
  // float32 additions differs.
  EXPECT_NEAR(on_gpu.front(), on_cpu.front(), 1e-5 * on_cpu.front());
  // Twenty SGD steps later, rounding differences have been amplified by the updates. The
  // GRU at lr 20 is unstable here (its step-20 loss, 7.96, is above its first, 6.20) and
  // amplifies them most: on an H200, 3.1e-4 at step 20 and 6.2e-4 at worst, where the
  // other models stay under 2e-4.
  const double tolerance = GetParam() == GRU ? 2e-3 : 1e-4;
  EXPECT_NEAR(on_gpu.back(), on_cpu.back(), tolerance * on_cpu.back());
}

INSTANTIATE_TEST_SUITE_P(Types, GpuVsCpuTest, ::testing::Values(RNN_TANH, RNN_RELU, LSTM, GRU, TRANSFORMER),
                         [](const auto& info) { return ModelType_Name(info.param); });

class GpuBf16Test : public ::testing::TestWithParam<ModelType> {};

TEST_P(GpuBf16Test, TracksFp32WithFloat32MasterWeights) {
  SKIP_WITHOUT_GPU();
  JobSpec spec = Spec(GetParam());
  spec.mutable_schedule()->set_max_batches_per_epoch(60);
  // A rate at which 60 steps follow a smooth path. At upstream's lr 20 the recurrent
  // models' first steps are chaotic: 16-bit rounding sent the two runs on an H200 to
  // validation perplexities 17% (LSTM) and 2x (GRU) apart after 60 steps, while a whole
  // WikiText-2 epoch at lr 20 ends within 0.4% (run.sh's bf16 step).
  if (GetParam() != TRANSFORMER) spec.mutable_optimizer()->set_lr(2.0);
  torch::Tensor train = Batchify(Quickstart().train, spec.data().batch_size());
  torch::Tensor valid = Batchify(Quickstart().valid, spec.data().eval_batch_size());
  double val[2];
  std::vector<double> losses[2];
  for (int bf16 = 0; bf16 < 2; ++bf16) {
    spec.mutable_schedule()->set_precision(bf16 ? BF16 : FP32);
    auto t = Trainer::Create(spec, Quickstart().dictionary, *ResolveDevice("cuda:0"));
    ASSERT_TRUE(t.ok());
    losses[bf16] = StepLosses(**t, train);
    EXPECT_LT(losses[bf16].back(), losses[bf16].front());
    // Autocast took effect: the decoder's scores in bfloat16, and the recurrent layers
    // in 16 bits (PyTorch's autocast sends cuDNN RNNs to float16, whatever its dtype).
    const Trainer::StepPrecision& precision = (*t)->last_step_precision();
    ASSERT_TRUE(precision.scores.has_value());
    EXPECT_EQ(*precision.scores, bf16 ? torch::kBFloat16 : torch::kFloat);
    if (GetParam() != TRANSFORMER) {
      ASSERT_TRUE(precision.recurrent.has_value());
      std::printf("%s %s: recurrent layers ran in %s, scores in %s\n", ModelType_Name(GetParam()).c_str(),
                  bf16 ? "BF16" : "FP32", c10::toString(*precision.recurrent), c10::toString(*precision.scores));
      if (bf16) {
        EXPECT_TRUE(*precision.recurrent == torch::kHalf || *precision.recurrent == torch::kBFloat16)
            << c10::toString(*precision.recurrent);
      } else {
        EXPECT_EQ(*precision.recurrent, torch::kFloat);
      }
    }
    for (const torch::Tensor& p : (*t)->model().parameters()) {
      EXPECT_EQ(p.scalar_type(), torch::kFloat);
      EXPECT_EQ(p.grad().scalar_type(), torch::kFloat);
    }
    val[bf16] = (*t)->Evaluate(valid, 20)->mean_loss();
  }
  std::printf("%s: validation ppl after 60 steps fp32 %.3f bf16 %.3f\n", ModelType_Name(GetParam()).c_str(),
              std::exp(val[0]), std::exp(val[1]));
  ASSERT_EQ(losses[0].size(), losses[1].size());
  for (size_t i : {size_t{0}, size_t{9}, size_t{19}, size_t{39}, losses[0].size() - 1}) {
    if (i >= losses[0].size()) continue;
    std::printf("%s: step %zu loss fp32 %.5f bf16 %.5f (relative %.2e)\n", ModelType_Name(GetParam()).c_str(), i + 1,
                losses[0][i], losses[1][i], std::abs(losses[1][i] - losses[0][i]) / losses[0][i]);
  }
  EXPECT_NE(losses[1], losses[0]) << "BF16 computed exactly what FP32 did: autocast was off";
  // The first step: one forward pass of the same weights, in 16 bits against 32.
  EXPECT_NEAR(losses[1].front(), losses[0].front(), 5e-3 * losses[0].front());
  EXPECT_NEAR(std::exp(val[1]) / std::exp(val[0]), 1.0, 0.02);
}

INSTANTIATE_TEST_SUITE_P(Types, GpuBf16Test, ::testing::Values(LSTM, GRU, TRANSFORMER),
                         [](const auto& info) { return ModelType_Name(info.param); });

// Stops a trainer after `steps` steps of its epoch (mid-epoch: state and RNG matter).
void TrainSteps(Trainer& t, const torch::Tensor& data, int64_t steps) {
  std::atomic<bool> stop{false};
  t.set_step_callback([&](const Trainer& tr) {
    if (tr.position().batch() == steps) stop = true;
    return absl::OkStatus();
  });
  ASSERT_TRUE(t.TrainEpoch(data, &stop).ok());
  t.set_step_callback(nullptr);
}

TEST(GpuCheckpointTest, MovesBetweenGpuAndCpu) {
  SKIP_WITHOUT_GPU();
  JobSpec spec = Spec(LSTM, 0.2f);
  spec.mutable_optimizer()->set_type(ADAMW);
  spec.mutable_optimizer()->set_lr(0.002);
  torch::Tensor train = Batchify(Quickstart().train, spec.data().batch_size());
  const torch::Device cuda = *ResolveDevice("cuda:0");
  auto gpu = Trainer::Create(spec, Quickstart().dictionary, cuda);
  TrainSteps(**gpu, train, 5);
  absl::StatusOr<Checkpoint> written = (*gpu)->MakeCheckpoint();
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(written->tensors.count("rng/cuda"), 1u);
  for (const auto& [name, tensor] : written->tensors) EXPECT_TRUE(tensor.is_cpu()) << name;
  absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(*SerializeCheckpoint(*written), "gpu");
  ASSERT_TRUE(parsed.ok());

  // GPU -> CPU: the same weights, optimizer state and position; training goes on.
  auto cpu = Trainer::Create(spec, Quickstart().dictionary, torch::kCPU);
  ASSERT_TRUE((*cpu)->LoadCheckpoint(*parsed, /*weights_only=*/false).ok());
  auto pg = (*gpu)->model().parameters();
  auto pc = (*cpu)->model().parameters();
  for (size_t i = 0; i < pg.size(); ++i) EXPECT_TRUE(torch::equal(pg[i].cpu(), pc[i]));
  EXPECT_EQ((*cpu)->position().batch(), 5);
  TrainSteps(**cpu, train, 8);
  EXPECT_TRUE(std::isfinite((*cpu)->last_step_loss()));

  // CPU -> GPU.
  absl::StatusOr<Checkpoint> from_cpu = (*cpu)->MakeCheckpoint();
  ASSERT_TRUE(from_cpu.ok());
  EXPECT_EQ(from_cpu->tensors.count("rng/cuda"), 0u);
  auto back = Trainer::Create(spec, Quickstart().dictionary, cuda);
  ASSERT_TRUE((*back)->LoadCheckpoint(*from_cpu, /*weights_only=*/false).ok());
  for (const torch::Tensor& p : (*back)->model().parameters()) EXPECT_TRUE(p.is_cuda());
  TrainSteps(**back, train, 11);
  EXPECT_TRUE(std::isfinite((*back)->last_step_loss()));
}

class ExactResumeTest : public ::testing::TestWithParam<std::string> {};

// A run stopped mid-epoch and resumed from its checkpoint goes on exactly as the
// uninterrupted run, for the default 2-layer LSTM with dropout between its layers: the
// layers run one at a time and that dropout comes from the device's generator, which
// the checkpoint saves (a multi-layer cuDNN RNN would draw it from cuDNN's own state,
// reseeded after a restore). Runs on the CPU everywhere, on the GPU where there is one.
TEST_P(ExactResumeTest, MidEpochResumeIsBitExactThroughTheStackedLayers) {
  const bool cuda = GetParam() != "cpu";
  if (cuda) {
    SKIP_WITHOUT_GPU();
    // What "exact" means on a GPU: with LibTorch's deterministic algorithms (and cuDNN's
    // deterministic mode), weights, optimizer state, recurrent state and both generators
    // restored give the bytes an uninterrupted run gives. Without them, atomics in some
    // backward kernels make two runs differ in the last bits.
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
    at::globalContext().setDeterministicCuDNN(true);
    at::globalContext().setBenchmarkCuDNN(false);
  }
  JobSpec spec = Spec(LSTM, 0.2f);
  ASSERT_EQ(spec.model().nlayers(), 2);
  torch::Tensor train = Batchify(Quickstart().train, spec.data().batch_size());
  const torch::Device device = *ResolveDevice(GetParam());
  auto straight = Trainer::Create(spec, Quickstart().dictionary, device);
  std::vector<double> expected = StepLosses(**straight, train);

  auto first = Trainer::Create(spec, Quickstart().dictionary, device);
  TrainSteps(**first, train, 7);
  absl::StatusOr<Checkpoint> c = (*first)->MakeCheckpoint();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->tensors.count("rng/cuda"), cuda ? 1u : 0u);
  torch::manual_seed(999);  // Whatever ran in between.
  auto resumed = Trainer::Create(spec, Quickstart().dictionary, device);
  ASSERT_TRUE((*resumed)->LoadCheckpoint(*ParseCheckpoint(*SerializeCheckpoint(*c), "c"), false).ok());
  std::vector<double> rest = StepLosses(**resumed, train);
  ASSERT_EQ(rest.size(), expected.size() - 7);
  for (size_t i = 0; i < rest.size(); ++i) EXPECT_EQ(rest[i], expected[i + 7]) << "step " << i + 7;
  auto a = (*straight)->model().parameters();
  auto b = (*resumed)->model().parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "param " << i;
  if (cuda) at::globalContext().setDeterministicAlgorithms(false, false);
}

INSTANTIATE_TEST_SUITE_P(Devices, ExactResumeTest, ::testing::Values("cpu", "cuda:0"), [](const auto& info) {
  return info.param == "cpu" ? std::string("cpu") : std::string("cuda");
});

TEST(GpuOutOfMemoryTest, FailsNamingTheMemoryAndLeavesTheDeviceUsable) {
  SKIP_WITHOUT_GPU();
  const torch::Device cuda = *ResolveDevice("cuda:0");
  // A small model and a large vocabulary: 36 x 8,192 tokens of a 500,000-word vocabulary
  // make 287K x 500K float scores (573 GB), more than any one GPU holds, while the
  // embedding and decoder (2 x 128 MB) and the cuDNN LSTM's batch stay ordinary (cuDNN
  // refuses some huge batches with errors of its own, not out-of-memory).
  std::vector<std::string> words;
  for (int i = 0; i < 500000; ++i) words.push_back("w" + std::to_string(i));
  JobSpec spec = Spec(LSTM);
  spec.mutable_data()->set_batch_size(8192);
  auto t = Trainer::Create(spec, Dictionary::FromWords(words), cuda);
  ASSERT_TRUE(t.ok()) << t.status();
  torch::Tensor data = torch::randint(500000, {36, 8192}, torch::kInt64);
  absl::StatusOr<EpochSummary> summary = (*t)->TrainEpoch(data);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kResourceExhausted) << summary.status();
  EXPECT_THAT(summary.status().message(), HasSubstr("out of memory on cuda:0"));
  EXPECT_THAT(summary.status().message(), HasSubstr("allocate"));  // LibTorch names the size.
  std::printf("out-of-memory message: %s\n", std::string(summary.status().message()).c_str());
  t->reset();
  ReleaseCachedDeviceMemory();
  // The process (a worker) takes the next job.
  auto small = Trainer::Create(Spec(LSTM), Quickstart().dictionary, cuda);
  ASSERT_TRUE(small.ok()) << small.status();
  std::vector<double> losses = StepLosses(**small, Batchify(Quickstart().train, 20));
  EXPECT_EQ(losses.size(), 20u);
}

}  // namespace
}  // namespace ddlm
