// Benchmark (not a test): what data-parallel training costs over one worker, measured
// on this machine with W ranks as threads in one process, each with its own Trainer
// and its own Gloo collective over 127.0.0.1.
//
//   bazel run //worker/benchmarks:allreduce_overhead -- --config=$PWD/configs/lstm.textproto
//       --data=$PWD/../shared/data/wikitext-2    (one line; defaults are relative to the repo root)
//
// Runs, one after the other:
//   1. the matmul peak at --threads_per_rank BLAS threads (the per-rank compute ceiling),
//      alone and with W threads multiplying at once (what W ranks share on this machine);
//   2. one worker, batch B (the config's), no reducer: the baseline step time;
//   3. W workers, batch B each on their own contiguous shard (common/base/sharding.h), with
//      GradientAllReducer: step time split into compute (forward, backward, clip and
//      update: the rest of the step), all-reduce (inside the collective) and pack
//      (packing, averaging, unpacking), from ReducerStats;
//   4. a pure all-reduce of a flat float tensor of the model's gradient size, on the
//      same collectives, as one call and as the reducer's number of bucket-sized calls.
// Bandwidths follow nccl-tests: algbw = bytes / time, busbw = algbw * 2 (W - 1) / W.
//
// Threads: ConfigureThreads(--threads_per_rank) sets OpenBLAS's (process-wide) thread
// count once; every rank thread, and the baseline's, also calls at::init_num_threads()
// so that LibTorch's OpenMP pool is 1 thread in it too (OpenMP's thread count is per
// thread: a new std::thread otherwise gets one per core).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/synchronization/barrier.h"
#include "absl/time/time.h"
#include "common/base/cli.h"
#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/base/key_value_store.h"
#include "common/base/sharding.h"
#include "common/benchmarks/matmul_peak.h"
#include "common/training/batching.h"
#include "common/training/threading.h"
#include "common/training/trainer.h"
#include "worker/collectives/collective.h"
#include "worker/collectives/gloo_collective.h"
#include "worker/gradient_reducer.h"

ABSL_FLAG(std::string, config, "configs/lstm.textproto", "Text-format JobSpec.");
ABSL_FLAG(std::string, data, "../shared/data/wikitext-2", "Corpus directory (overrides the config's).");
ABSL_FLAG(int32_t, batches, 10, "Measured training steps per case (after --warmup).");
ABSL_FLAG(int32_t, warmup, 2, "Unmeasured training steps first (the reducer builds its buckets here).");
ABSL_FLAG(int32_t, threads_per_rank, 1,
          "OpenBLAS threads, set once for the process: each rank and the 1-worker baseline use this many.");
ABSL_FLAG(double, bucket_mb, 25, "GradientAllReducer bucket size in MiB (c10d DDP's default: 25).");
ABSL_FLAG(int32_t, workers, 2, "Data-parallel ranks (threads) in the distributed case, >= 2.");
ABSL_FLAG(int32_t, reps, 10, "Timed calls per pure all-reduce measurement (after 2 untimed ones).");
ABSL_FLAG(int32_t, peak_size, 2048, "Side of the square matmul that measures the peak.");
ABSL_FLAG(std::string, allreduce_dtype, "",
          "FP32 or BF16: the gradient all-reduce's type (default: the config's "
          "schedule.allreduce_dtype).");
ABSL_FLAG(std::string, touched_rows, "",
          "true or false: all-reduce only the embedding rows a batch touched (default: the "
          "config's schedule.allreduce_touched_rows).");
ABSL_FLAG(bool, overlap, false,
          "All-reduce buckets during backward (GradientAllReducer::Attach, what ddlm_worker "
          "does); the all-reduce column is then the part not hidden behind backward.");

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Mean per-thread GFLOP/s of the same matmul with `threads` threads multiplying at once
// (mean over `reps`, not best, so that every timed call overlaps the others).
double ConcurrentMatmulGflops(int64_t n, int reps, int threads) {
  std::vector<double> rate(threads);
  absl::Barrier* start = new absl::Barrier(threads);  // Deletes itself (Block's contract).
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      at::init_num_threads();
      torch::Tensor a = torch::randn({n, n});
      torch::Tensor b = torch::randn({n, n});
      torch::Tensor c = torch::mm(a, b);
      if (start->Block()) delete start;
      auto t0 = Clock::now();
      for (int i = 0; i < reps; ++i) c = torch::mm(a, b);
      rate[t] = 2.0 * n * n * n * reps / Seconds(t0, Clock::now()) / 1e9;
    });
  }
  for (auto& th : pool) th.join();
  double sum = 0;
  for (double r : rate) sum += r;
  return sum / threads;
}

// Per-step means over the measured steps of one rank.
struct StepFigures {
  double step = 0;       // Wall seconds per step.
  double allreduce = 0;  // Seconds inside the collective per step.
  double pack = 0;       // Seconds packing, averaging and unpacking per step.
  double compute() const { return step - allreduce - pack; }
  double bytes = 0;        // Bytes all-reduced per step.
  double collectives = 0;  // All-reduce calls per step.
};

struct RankRun {
  absl::Status status;
  int torch_threads = 0;  // at::get_num_threads() in the rank's thread.
  int buckets = 0;
  StepFigures figures;
  // Each measured step's wall, all-reduce and pack seconds.
  std::vector<double> step_s, allreduce_s, pack_s;
  // Pure all-reduce: seconds per flat call, and per step of `buckets` calls.
  double flat_seconds = 0;
  double bucketed_seconds = 0;
};

// Trains warmup + batches steps and fills run->figures from the measured ones.
absl::Status TimeTraining(ddlm::Trainer& trainer, const torch::Tensor& data, ddlm::GradientAllReducer* reducer,
                          int warmup, int batches, RankRun* run) {
  std::vector<Clock::time_point> stamps;
  std::vector<ddlm::ReducerStats> stats;
  auto snapshot = [&] {
    stamps.push_back(Clock::now());
    stats.push_back(reducer != nullptr ? reducer->stats() : ddlm::ReducerStats());
  };
  if (reducer != nullptr) {
    trainer.set_gradient_reducer([reducer](const std::vector<torch::Tensor>& grads) { return reducer->Reduce(grads); });
  }
  trainer.set_step_callback([&](const ddlm::Trainer&) {
    snapshot();
    return absl::OkStatus();
  });
  snapshot();
  absl::StatusOr<ddlm::EpochSummary> summary =
      trainer.TrainEpoch(data, reducer != nullptr ? reducer->stop_agreed() : nullptr);
  trainer.set_step_callback(nullptr);
  trainer.set_gradient_reducer(nullptr);
  if (!summary.ok()) return summary.status();
  const size_t end = static_cast<size_t>(warmup + batches);
  if (stamps.size() != end + 1) {
    return absl::InternalError("training ran " + std::to_string(stamps.size() - 1) + " steps, expected " +
                               std::to_string(end));
  }
  const size_t begin = static_cast<size_t>(warmup);
  StepFigures& f = run->figures;
  f.step = Seconds(stamps[begin], stamps[end]) / batches;
  // With overlap, only the wait after backward costs step time.
  auto comm = [](const ddlm::ReducerStats& st) {
    return absl::GetFlag(FLAGS_overlap) ? st.exposed_seconds : st.allreduce_seconds;
  };
  f.allreduce = (comm(stats[end]) - comm(stats[begin])) / batches;
  f.pack = (stats[end].pack_seconds - stats[begin].pack_seconds) / batches;
  f.bytes = static_cast<double>(stats[end].bytes - stats[begin].bytes) / batches;
  f.collectives = static_cast<double>(stats[end].collectives - stats[begin].collectives) / batches;
  for (size_t k = begin; k < end; ++k) {
    run->step_s.push_back(Seconds(stamps[k], stamps[k + 1]));
    run->allreduce_s.push_back(comm(stats[k + 1]) - comm(stats[k]));
    run->pack_s.push_back(stats[k + 1].pack_seconds - stats[k].pack_seconds);
  }
  if (reducer != nullptr) run->buckets = reducer->num_buckets();
  return absl::OkStatus();
}

// Seconds per call of all-reducing `numel` floats in `chunks` equal calls, the mean of
// `reps` back-to-back repetitions after 2 untimed ones (nccl-tests' way).
absl::StatusOr<double> TimeAllReduce(ddlm::Collective& collective, int64_t numel, int chunks, int reps) {
  torch::Tensor flat = torch::ones({numel});
  std::vector<torch::Tensor> parts;
  const int64_t per = (numel + chunks - 1) / chunks;
  for (int64_t offset = 0; offset < numel; offset += per) {
    parts.push_back(flat.narrow(0, offset, std::min(per, numel - offset)));
  }
  auto once = [&]() -> absl::Status {
    for (torch::Tensor& p : parts) {
      if (absl::Status s = collective.AllReduceSum(p); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  for (int i = 0; i < 2; ++i) {
    if (absl::Status s = once(); !s.ok()) return s;
  }
  if (absl::Status s = collective.Barrier(); !s.ok()) return s;
  const auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) {
    if (absl::Status s = once(); !s.ok()) return s;
  }
  return Seconds(t0, Clock::now()) / reps;
}

[[noreturn]] void Die(const absl::Status& status) {
  std::fprintf(stderr, "allreduce_overhead: %s\n", status.ToString().c_str());
  std::exit(1);
}

std::string Dash(int width) { return std::string(static_cast<size_t>(width), '-'); }

}  // namespace

int main(int argc, char** argv) {
  ddlm::ParseFlagsOrExit(argc, argv, "allreduce_overhead",
                         "Measures data-parallel all-reduce overhead against one worker.");
  const int world = absl::GetFlag(FLAGS_workers);
  const int warmup = absl::GetFlag(FLAGS_warmup);
  const int batches = absl::GetFlag(FLAGS_batches);
  const int reps = absl::GetFlag(FLAGS_reps);
  const int threads_per_rank = absl::GetFlag(FLAGS_threads_per_rank);
  const int64_t bucket_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_bucket_mb) * (1 << 20));
  if (world < 2 || warmup < 0 || batches < 1 || reps < 1 || threads_per_rank < 1 || bucket_bytes < 4) {
    std::fprintf(stderr,
                 "allreduce_overhead: need --workers >= 2, --warmup >= 0, --batches >= 1, --reps >= 1, "
                 "--threads_per_rank >= 1, --bucket_mb > 0\n");
    return 2;
  }

  ddlm::ConfigureThreads(threads_per_rank);
  ddlm::BlasInfo blas = ddlm::DetectBlas();
  const unsigned cores = std::thread::hardware_concurrency();
  std::printf("BLAS %s (%s), BLAS threads %d, LibTorch threads %d; %u cores\n", blas.name.c_str(),
              blas.library_path.c_str(), blas.blas_threads, blas.torch_threads, cores);
  if (blas.is_reference()) std::printf("WARNING: the reference BLAS is ~35x slower than OpenBLAS\n");
  if (static_cast<unsigned>(world * threads_per_rank) > cores) {
    std::printf("WARNING: %d ranks x %d threads > %u cores: the ranks' compute contends for cores\n", world,
                threads_per_rank, cores);
  }

  absl::StatusOr<ddlm::JobSpec> loaded = ddlm::LoadJobSpec(absl::GetFlag(FLAGS_config));
  if (!loaded.ok()) Die(loaded.status());
  ddlm::JobSpec spec = *loaded;
  spec.mutable_data()->set_path(absl::GetFlag(FLAGS_data));
  spec.mutable_schedule()->set_max_batches_per_epoch(warmup + batches);
  spec.mutable_schedule()->set_log_interval(1 << 30);
  if (const std::string dtype = absl::GetFlag(FLAGS_allreduce_dtype); !dtype.empty()) {
    ddlm::Precision p;
    if (!ddlm::Precision_Parse(dtype, &p) || p == ddlm::PRECISION_UNSPECIFIED) {
      Die(absl::InvalidArgumentError("--allreduce_dtype='" + dtype + "': expected FP32 or BF16"));
    }
    spec.mutable_schedule()->set_allreduce_dtype(p);
  }
  if (const std::string rows = absl::GetFlag(FLAGS_touched_rows); !rows.empty()) {
    if (rows != "true" && rows != "false") {
      Die(absl::InvalidArgumentError("--touched_rows='" + rows + "': expected true or false"));
    }
    spec.mutable_schedule()->set_allreduce_touched_rows(rows == "true");
  }
  ddlm::ApplyDefaults(&spec);
  if (absl::Status s = ddlm::ValidateJobSpec(spec); !s.ok()) Die(s);
  const torch::ScalarType wire_dtype =
      spec.schedule().allreduce_dtype() == ddlm::BF16 ? torch::kBFloat16 : torch::kFloat32;
  const bool touched_rows = spec.schedule().allreduce_touched_rows();
  std::printf("all-reduce in %s%s\n", ddlm::Precision_Name(spec.schedule().allreduce_dtype()).c_str(),
              touched_rows ? ", the embedding's touched rows only" : ", every gradient whole");
  absl::StatusOr<ddlm::Corpus> corpus = ddlm::LoadCorpus(spec.data().path());
  if (!corpus.ok()) Die(corpus.status());
  const int64_t batch = spec.data().batch_size();
  const int64_t bptt = spec.data().bptt();
  const int64_t num_tokens = static_cast<int64_t>(corpus->train.size());

  // 1. Compute ceiling.
  const int64_t peak_n = absl::GetFlag(FLAGS_peak_size);
  const double peak = ddlm::MatmulGflops(peak_n, peak_n, peak_n, 5);
  const double peak_shared = ConcurrentMatmulGflops(peak_n, 5, world);
  std::printf(
      "matmul peak %lldx%lld float at %d BLAS thread(s): %.1f GFLOP/s alone (the per-rank ceiling), "
      "%.1f GFLOP/s each with %d threads multiplying at once\n",
      static_cast<long long>(peak_n), static_cast<long long>(peak_n), threads_per_rank, peak, peak_shared, world);

  // 2. One worker, the same per-worker batch, no reducer.
  RankRun single;
  int64_t num_params = 0;
  {
    absl::StatusOr<ddlm::ShardRange> shard = ddlm::TrainShard(num_tokens, 1, 0, batch);
    if (!shard.ok()) Die(shard.status());
    std::vector<int64_t> ids(corpus->train.begin() + shard->begin, corpus->train.begin() + shard->end);
    torch::Tensor data = ddlm::Batchify(ids, batch);
    if (ddlm::NumBatches(data, bptt) < warmup + batches) {
      Die(absl::InvalidArgumentError("the training split is too short for --warmup + --batches steps"));
    }
    absl::StatusOr<std::unique_ptr<ddlm::Trainer>> trainer = ddlm::Trainer::Create(spec, corpus->dictionary);
    if (!trainer.ok()) Die(trainer.status());
    num_params = (*trainer)->num_parameters();
    std::printf(
        "config %s: %s emsize %d nhid %d nlayers %d, vocabulary %lld, %.2fM parameters = %.1f MB of "
        "float32 gradients\n",
        absl::GetFlag(FLAGS_config).c_str(), ddlm::ModelType_Name(spec.model().type()).c_str(), spec.model().emsize(),
        spec.model().nhid(), spec.model().nlayers(), static_cast<long long>(corpus->dictionary.size()),
        num_params / 1e6, num_params * 4 / 1e6);
    std::printf(
        "per-worker batch %lld x bptt %lld = %lld tokens/step; %d warm-up + %d measured steps per "
        "case; bucket %.1f MiB\n",
        static_cast<long long>(batch), static_cast<long long>(bptt), static_cast<long long>(batch * bptt), warmup,
        batches, bucket_bytes / double(1 << 20));
    std::fflush(stdout);
    std::thread th([&] {
      at::init_num_threads();
      single.torch_threads = at::get_num_threads();
      single.status = TimeTraining(**trainer, data, nullptr, warmup, batches, &single);
    });
    th.join();
    if (!single.status.ok()) Die(single.status);
  }

  // 3 and 4. W workers as threads, each with its own trainer and Gloo collective.
  std::vector<RankRun> ranks(static_cast<size_t>(world));
  {
    std::vector<std::unique_ptr<ddlm::Trainer>> trainers;
    std::vector<torch::Tensor> shards;
    for (int r = 0; r < world; ++r) {
      // Create seeds LibTorch's global generator: one after the other, before any thread.
      absl::StatusOr<std::unique_ptr<ddlm::Trainer>> t = ddlm::Trainer::Create(spec, corpus->dictionary);
      if (!t.ok()) Die(t.status());
      trainers.push_back(*std::move(t));
      absl::StatusOr<ddlm::ShardRange> shard = ddlm::TrainShard(num_tokens, world, r, batch);
      if (!shard.ok()) Die(shard.status());
      std::vector<int64_t> ids(corpus->train.begin() + shard->begin, corpus->train.begin() + shard->end);
      shards.push_back(ddlm::Batchify(ids, batch));
      if (ddlm::NumBatches(shards.back(), bptt) < warmup + batches) {
        Die(absl::InvalidArgumentError("a rank's shard is too short for --warmup + --batches steps"));
      }
    }
    ddlm::InMemoryKeyValueStore store;
    std::vector<std::thread> threads;
    for (int r = 0; r < world; ++r) {
      threads.emplace_back([&, r] {
        RankRun& run = ranks[static_cast<size_t>(r)];
        at::init_num_threads();
        run.torch_threads = at::get_num_threads();
        ddlm::CollectiveOptions options;
        options.rank = r;
        options.world_size = world;
        options.store_prefix = "allreduce_overhead/";
        options.host = "127.0.0.1";
        absl::StatusOr<std::unique_ptr<ddlm::Collective>> collective = ddlm::CreateGlooCollective(options, &store);
        if (!collective.ok()) {
          run.status = collective.status();
          return;
        }
        ddlm::GradientAllReducer reducer(collective->get(), bucket_bytes);
        if (run.status = reducer.set_wire_dtype(wire_dtype); !run.status.ok()) return;
        if (touched_rows) {
          run.status =
              reducer.set_row_sparse_gradients(trainers[static_cast<size_t>(r)]->model().RowSparseGradientParameters());
          if (!run.status.ok()) return;
        }
        if (absl::GetFlag(FLAGS_overlap)) {
          if (run.status = reducer.Attach(trainers[static_cast<size_t>(r)]->model().parameters()); !run.status.ok()) {
            return;
          }
        }
        if (run.status = (*collective)->Barrier(); !run.status.ok()) return;
        run.status = TimeTraining(*trainers[static_cast<size_t>(r)], shards[static_cast<size_t>(r)], &reducer, warmup,
                                  batches, &run);
        if (!run.status.ok()) return;
        absl::StatusOr<double> flat = TimeAllReduce(**collective, num_params, 1, reps);
        if (!flat.ok()) {
          run.status = flat.status();
          return;
        }
        run.flat_seconds = *flat;
        absl::StatusOr<double> bucketed = TimeAllReduce(**collective, num_params, run.buckets, reps);
        if (!bucketed.ok()) {
          run.status = bucketed.status();
          return;
        }
        run.bucketed_seconds = *bucketed;
      });
    }
    for (auto& t : threads) t.join();
    for (const RankRun& run : ranks) {
      if (!run.status.ok()) Die(run.status);
    }
  }

  // Report.
  const double bus = 2.0 * (world - 1) / world;
  std::printf("LibTorch threads inside the rank threads: baseline %d, ranks", single.torch_threads);
  for (const RankRun& run : ranks) std::printf(" %d", run.torch_threads);
  std::printf("; %d bucket(s), %.0f all-reduce call(s) per step\n\n", ranks[0].buckets, ranks[0].figures.collectives);

  std::printf("training, ms per step (mean of %d steps); compute = step - all-reduce - pack\n", batches);
  std::printf("%-12s %5s %9s %9s %11s %7s %9s %11s %11s\n", "case", "rank", "step", "compute", "all-reduce", "pack",
              "MB/step", "algbw GB/s", "busbw GB/s");
  const int table_width = 12 + 5 + 9 + 9 + 11 + 7 + 9 + 11 + 11 + 8;
  std::printf("%s\n", Dash(table_width).c_str());
  std::printf("%-12s %5d %9.1f %9.1f %11s %7s %9s %11s %11s\n", "1 worker", 0, single.figures.step * 1e3,
              single.figures.compute() * 1e3, "-", "-", "-", "-", "-");
  StepFigures mean;
  double step_max = 0;
  for (int r = 0; r < world; ++r) {
    const StepFigures& f = ranks[static_cast<size_t>(r)].figures;
    const double algbw = f.allreduce > 0 ? f.bytes / f.allreduce / 1e9 : 0;
    std::printf("%-12s %5d %9.1f %9.1f %11.1f %7.1f %9.1f %11.3f %11.3f\n",
                (std::to_string(world) + " workers").c_str(), r, f.step * 1e3, f.compute() * 1e3, f.allreduce * 1e3,
                f.pack * 1e3, f.bytes / 1e6, algbw, algbw * bus);
    mean.step += f.step / world;
    mean.allreduce += f.allreduce / world;
    mean.pack += f.pack / world;
    mean.bytes += f.bytes / world;
    step_max = std::max(step_max, f.step);
  }
  const double train_algbw = mean.bytes / mean.allreduce / 1e9;
  std::printf("%-12s %5s %9.1f %9.1f %11.1f %7.1f %9.1f %11.3f %11.3f\n", (std::to_string(world) + " workers").c_str(),
              "mean", mean.step * 1e3, mean.compute() * 1e3, mean.allreduce * 1e3, mean.pack * 1e3, mean.bytes / 1e6,
              train_algbw, train_algbw * bus);
  // The critical path: in each step, the rank that reached the all-reduce last waited
  // for nobody, so its all-reduce time is the transfer and its compute set the pace;
  // the others' extra all-reduce time is waiting for it (compute skew).
  StepFigures crit;
  double wait = 0;
  for (int k = 0; k < batches; ++k) {
    size_t last = 0;
    for (size_t r = 1; r < ranks.size(); ++r) {
      if (ranks[r].allreduce_s[k] < ranks[last].allreduce_s[k]) last = r;
    }
    crit.step += ranks[last].step_s[k] / batches;
    crit.allreduce += ranks[last].allreduce_s[k] / batches;
    crit.pack += ranks[last].pack_s[k] / batches;
    for (size_t r = 0; r < ranks.size(); ++r) {
      wait += (ranks[r].allreduce_s[k] - ranks[last].allreduce_s[k]) / batches / (world - 1);
    }
  }
  crit.bytes = mean.bytes;
  const double crit_algbw = crit.bytes / crit.allreduce / 1e9;
  std::printf("%-12s %5s %9.1f %9.1f %11.1f %7.1f %9.1f %11.3f %11.3f\n", (std::to_string(world) + " workers").c_str(),
              "crit", crit.step * 1e3, crit.compute() * 1e3, crit.allreduce * 1e3, crit.pack * 1e3, crit.bytes / 1e6,
              crit_algbw, crit_algbw * bus);
  std::printf(
      "(a rank's all-reduce time includes waiting for the slower rank to reach the collective; 'crit' "
      "takes each step from the rank that arrived last,\n whose all-reduce time is the transfer alone; "
      "the other rank(s) waited %.1f ms per step on average)\n\n",
      wait * 1e3);

  const double t1 = single.figures.step;
  const double overhead = (step_max - t1) / step_max * 100;
  std::printf(
      "overhead vs 1 worker: %.1f ms vs %.1f ms per step: +%.1f ms = %.1f%% of the %d-worker step "
      "(%+.1f%% over the 1-worker step)\n",
      step_max * 1e3, t1 * 1e3, (step_max - t1) * 1e3, overhead, world, (step_max / t1 - 1) * 100);
  std::printf(
      "  on the critical path: all-reduce %.1f ms (%.1f%% of the step) + pack %.1f ms (%.1f%%) + compute "
      "%+.1f ms vs 1 worker (%.1f%%: the ranks share this machine's cores and memory)\n",
      crit.allreduce * 1e3, crit.allreduce / crit.step * 100, crit.pack * 1e3, crit.pack / crit.step * 100,
      (crit.compute() - t1) * 1e3, (crit.compute() - t1) / crit.step * 100);
  std::printf("  throughput %d workers / 1 worker: %.2fx (scaling efficiency %.0f%%)\n\n", world, world * t1 / step_max,
              t1 / step_max * 100);

  const double grad_bytes = num_params * 4.0;
  std::printf(
      "pure all-reduce, %d ranks, %.1f MB float32 (the model's gradient size), mean of %d calls, "
      "slowest rank:\n",
      world, grad_bytes / 1e6, reps);
  std::printf("%-28s %9s %11s %11s\n", "layout", "ms", "algbw GB/s", "busbw GB/s");
  std::printf("%s\n", Dash(28 + 9 + 11 + 11 + 3).c_str());
  double flat = 0, bucketed = 0;
  for (const RankRun& run : ranks) {
    flat = std::max(flat, run.flat_seconds);
    bucketed = std::max(bucketed, run.bucketed_seconds);
  }
  const double flat_algbw = grad_bytes / flat / 1e9;
  const double bucketed_algbw = grad_bytes / bucketed / 1e9;
  std::printf("%-28s %9.1f %11.3f %11.3f\n", "1 flat tensor", flat * 1e3, flat_algbw, flat_algbw * bus);
  std::printf("%-28s %9.1f %11.3f %11.3f\n", (std::to_string(ranks[0].buckets) + " equal parts (= buckets)").c_str(),
              bucketed * 1e3, bucketed_algbw, bucketed_algbw * bus);
  std::printf("%-28s %9.1f %11.3f %11.3f\n", "in training (crit)", crit.allreduce * 1e3, crit_algbw, crit_algbw * bus);
  std::printf("%-28s %9.1f %11.3f %11.3f\n", "in training (mean rank)", mean.allreduce * 1e3, train_algbw,
              train_algbw * bus);
  std::printf("\n");

  std::printf(
      "SUMMARY %s workers=%d threads/rank=%d batch=%lldx%lld: step 1w %.1f ms, %dw %.1f ms (critical "
      "path: compute %.1f + all-reduce %.1f + pack %.1f) -> overhead %.1f%% of step; %.1f MB/step; "
      "all-reduce algbw %.3f GB/s in training, %.3f GB/s pure (busbw %.3f); all-reduce %s%s\n",
      spec.name().c_str(), world, threads_per_rank, static_cast<long long>(batch), static_cast<long long>(bptt),
      t1 * 1e3, world, step_max * 1e3, crit.compute() * 1e3, crit.allreduce * 1e3, crit.pack * 1e3, overhead,
      mean.bytes / 1e6, crit_algbw, flat_algbw, flat_algbw * bus,
      ddlm::Precision_Name(spec.schedule().allreduce_dtype()).c_str(), touched_rows ? " touched rows" : "");
  return 0;
}
