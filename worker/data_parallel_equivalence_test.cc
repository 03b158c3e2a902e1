// Data-parallel equivalence: W ranks with batch B (sharded by common/base/sharding.h,
// gradients averaged by GradientAllReducer over a real Gloo collective) follow the
// same trajectory as one trainer with batch W*B.

#include <ATen/Context.h>

#include <cmath>

#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/base/sharding.h"
#include "common/training/batching.h"
#include "common/training/trainer.h"
#include "gtest/gtest.h"
#include "worker/collectives/local_group.h"
#include "worker/gradient_reducer.h"

namespace ddlm {
namespace {

constexpr int kSteps = 24;

JobSpec Spec(int batch) {
  JobSpec spec;
  spec.mutable_data()->set_path("configs/quickstart_data");
  spec.mutable_data()->set_batch_size(batch);
  spec.mutable_data()->set_bptt(12);
  spec.mutable_model()->set_type(LSTM);
  spec.mutable_model()->set_emsize(16);
  spec.mutable_model()->set_nhid(16);
  spec.mutable_model()->set_dropout(0);  // Dropout masks would differ between layouts.
  spec.mutable_schedule()->set_max_batches_per_epoch(kSteps);
  spec.mutable_schedule()->set_epochs(1);
  ApplyDefaults(&spec);
  return spec;
}

// Per-step training losses of one trainer over `data`.
std::vector<double> Run(Trainer& trainer, const torch::Tensor& data) {
  std::vector<double> losses;
  trainer.set_step_callback([&](const Trainer& t) {
    losses.push_back(t.last_step_loss());
    return absl::OkStatus();
  });
  auto summary = trainer.TrainEpoch(data);
  EXPECT_TRUE(summary.ok()) << summary.status();
  return losses;
}

// The reducer's communication hooks (worker/gradient_reducer.h).
struct Hooks {
  bool touched_rows = false;
  bool bf16_wire = false;
};

void ExpectEquivalent(int world, bool overlap, torch::Device device = torch::kCPU, Hooks hooks = {}) {
  const int batch = 4;
  absl::StatusOr<Corpus> corpus = LoadCorpus("configs/quickstart_data");
  ASSERT_TRUE(corpus.ok()) << corpus.status();

  // One worker, batch world*batch.
  auto single = Trainer::Create(Spec(world * batch), corpus->dictionary, device);
  ASSERT_TRUE(single.ok());
  std::vector<double> expected = Run(**single, Batchify(corpus->train, world * batch));
  ASSERT_EQ(expected.size(), static_cast<size_t>(kSteps));

  // `world` ranks as threads, batch `batch` each.
  std::vector<std::unique_ptr<Trainer>> trainers;
  for (int r = 0; r < world; ++r) {
    auto t = Trainer::Create(Spec(batch), corpus->dictionary, device);  // Same seed: same weights.
    ASSERT_TRUE(t.ok());
    trainers.push_back(*std::move(t));
  }
  std::vector<std::vector<double>> losses(world);
  testing::RunOnLocalGlooGroup(world, [&](int r, Collective& collective) {
    GradientAllReducer reducer(&collective, /*bucket_bytes=*/16 << 10);  // Several buckets.
    if (hooks.touched_rows) {
      const std::vector<size_t> rows = trainers[r]->model().RowSparseGradientParameters();
      ASSERT_EQ(rows.size(), 1u);
      ASSERT_TRUE(reducer.set_row_sparse_gradients(rows).ok());
    }
    if (hooks.bf16_wire) {
      ASSERT_TRUE(reducer.set_wire_dtype(torch::kBFloat16).ok());
    }
    if (overlap) {
      ASSERT_TRUE(reducer.Attach(trainers[r]->model().parameters()).ok());
    }
    trainers[r]->set_gradient_reducer([&](const std::vector<torch::Tensor>& grads) { return reducer.Reduce(grads); });
    ShardRange shard = *TrainShard(static_cast<int64_t>(corpus->train.size()), world, r, batch);
    std::vector<int64_t> mine(corpus->train.begin() + shard.begin, corpus->train.begin() + shard.end);
    losses[r] = Run(*trainers[r], Batchify(mine, batch));
    EXPECT_GT(reducer.num_buckets(), 1);
    if (hooks.touched_rows) {
      // A batch of 4 x 12 tokens touches a few dozen of the vocabulary's rows.
      EXPECT_GT(reducer.stats().rows_reduced, 0);
      EXPECT_LT(reducer.stats().rows_reduced, reducer.stats().rows_total / 2);
    }
  });

  double worst = 0;
  for (int step = 0; step < kSteps; ++step) {
    double mean = 0;
    for (int r = 0; r < world; ++r) mean += losses[r][step] / world;
    // Float32 sums in another order: agreement to ~1e-6 relative, drifting slowly.
    // bfloat16 on the wire rounds every gradient to 8 significant bits.
    const double tolerance = hooks.bf16_wire ? 5e-3 : 2e-4;
    EXPECT_NEAR(mean, expected[step], tolerance * expected[step]) << "step " << step;
    worst = std::max(worst, std::abs(mean - expected[step]) / expected[step]);
  }
  std::printf(
      "%d workers x batch %d vs 1 x %d%s%s%s on %s: largest relative loss difference over %d steps: "
      "%.2e\n",
      world, batch, world * batch, overlap ? " (overlapped)" : "", hooks.touched_rows ? " (touched rows)" : "",
      hooks.bf16_wire ? " (bf16 all-reduce)" : "", device.str().c_str(), kSteps, worst);
  // The ranks' weights are identical to each other, and close to the single trainer's.
  auto p0 = trainers[0]->model().parameters();
  auto ps = (*single)->model().parameters();
  for (int r = 1; r < world; ++r) {
    auto pr = trainers[r]->model().parameters();
    for (size_t i = 0; i < p0.size(); ++i) EXPECT_TRUE(torch::equal(p0[i], pr[i])) << "param " << i;
  }
  for (size_t i = 0; i < p0.size(); ++i) {
    // bfloat16 gradients at lr 20: the weights wander further (the losses above agree).
    EXPECT_LT((p0[i] - ps[i]).abs().max().item<float>(), hooks.bf16_wire ? 0.15 : 1e-3) << "param " << i;
  }
}

TEST(DataParallelEquivalenceTest, TwoWorkersWithBatchBMatchOneWorkerWithBatch2B) {
  ExpectEquivalent(2, /*overlap=*/false);
}

TEST(DataParallelEquivalenceTest, TwoWorkersOverlappingAllReduceWithBackward) { ExpectEquivalent(2, /*overlap=*/true); }

TEST(DataParallelEquivalenceTest, ThreeWorkers) { ExpectEquivalent(3, /*overlap=*/true); }

// Only the embedding rows some rank's batch used are all-reduced: the same trajectory.
TEST(DataParallelEquivalenceTest, ThreeWorkersAllReducingTouchedEmbeddingRows) {
  ExpectEquivalent(3, /*overlap=*/true, torch::kCPU, Hooks{/*touched_rows=*/true});
}

TEST(DataParallelEquivalenceTest, TwoWorkersTouchedRowsWithoutOverlap) {
  ExpectEquivalent(2, /*overlap=*/false, torch::kCPU, Hooks{/*touched_rows=*/true});
}

// Gradients all-reduced in bfloat16: the losses stay within 0.5% of one worker's.
TEST(DataParallelEquivalenceTest, TwoWorkersAllReducingInBfloat16) {
  ExpectEquivalent(2, /*overlap=*/true, torch::kCPU, Hooks{/*touched_rows=*/true, /*bf16_wire=*/true});
}

// Two ranks sharing one GPU (NCCL refuses two ranks on one device): gradients bucketed
// in device memory, staged through pinned host memory for Gloo, ordered by CUDA events.
TEST(DataParallelEquivalenceTest, TwoRanksOnOneGpuThroughGloo) {
  if (torch::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device visible (tests/gpu/run.sh)";
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  ExpectEquivalent(2, /*overlap=*/true, torch::Device(torch::kCUDA, 0), Hooks{/*touched_rows=*/true});
}

}  // namespace
}  // namespace ddlm
