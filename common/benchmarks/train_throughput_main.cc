// Benchmark (not a test): training throughput of a config against this machine's own
// matrix-multiply peak, measured in the same run.
//
//   bazel run //common/benchmarks:train_throughput -- --data=$PWD/../shared/data/wikitext-2
//
// Prints: the GFLOP/s of a large square float matmul and of the decoder-shaped one
// (bptt*batch x nhid by nhid x ntoken), then tokens/s and the achieved model FLOP rate
// for training the default LSTM (word_language_model's defaults), and where a step's
// time goes (forward up to the decoder, decoder + loss, backward, clip + update).

#include <chrono>
#include <cstdio>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/base/cli.h"
#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/benchmarks/matmul_peak.h"
#include "common/training/autocast.h"
#include "common/training/batching.h"
#include "common/training/device.h"
#include "common/training/loss.h"
#include "common/training/threading.h"
#include "common/training/trainer.h"

ABSL_FLAG(std::string, data, "../shared/data/wikitext-2", "Corpus directory.");
ABSL_FLAG(std::string, config, "", "Optional text-format JobSpec (default: upstream's LSTM defaults).");
ABSL_FLAG(int32_t, batches, 40, "Timed training batches (after --warmup).");
ABSL_FLAG(int32_t, warmup, 5, "Untimed batches first.");
ABSL_FLAG(int32_t, threads, 0, "OpenBLAS threads (0: one per core).");
ABSL_FLAG(int32_t, torch_threads, 1, "LibTorch intra-op (OpenMP) threads (0: one per core).");
ABSL_FLAG(std::string, trace, "", "If set, write a Chrome trace of the phase-timed steps here.");
ABSL_FLAG(int32_t, peak_size, 2048, "Side of the square matmul that measures the peak.");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda:N (a --config=cuda build).");
ABSL_FLAG(std::string, precision, "", "fp32 or bf16 (default: the config's, else fp32).");
ABSL_FLAG(int64_t, loss_block_rows, ddlm::kDefaultLossBlockRows,
          "Phase timing: rows per block of the fused decoder + loss (0: unfused linear + "
          "CrossEntropy, as before it).");

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Forward FLOPs per token (multiply-adds x 2) of the model's matrix products; training
// (forward + backward) is about 3x this.
double ForwardFlopsPerToken(const ddlm::ModelConfig& m, int64_t ntoken, int64_t bptt) {
  const double e = m.emsize(), h = m.nhid(), l = m.nlayers();
  double body;
  switch (m.type()) {
    case ddlm::LSTM: body = 4 * ((e + h) * h + (l - 1) * 2 * h * h); break;
    case ddlm::GRU: body = 3 * ((e + h) * h + (l - 1) * 2 * h * h); break;
    case ddlm::TRANSFORMER:  // QKV + out projections, attention over bptt/2 on average, FFN.
      body = l * (4 * e * e + 2 * e * (bptt / 2.0) + 2 * e * h);
      break;
    default: body = (e + h) * h + (l - 1) * 2 * h * h;
  }
  const double decoder_in = m.type() == ddlm::TRANSFORMER ? e : h;
  return 2.0 * (body + decoder_in * ntoken);
}

}  // namespace

int main(int argc, char** argv) {
  ddlm::ParseFlagsOrExit(argc, argv, "train_throughput",
                         "Benchmarks training throughput against the machine's matmul peak.");
  ddlm::ConfigureThreads(absl::GetFlag(FLAGS_threads), absl::GetFlag(FLAGS_torch_threads));
  ddlm::BlasInfo blas = ddlm::DetectBlas();
  std::printf("BLAS %s (%s), BLAS threads %d, LibTorch threads %d\n", blas.name.c_str(), blas.library_path.c_str(),
              blas.blas_threads, blas.torch_threads);

  ddlm::JobSpec spec;
  if (!absl::GetFlag(FLAGS_config).empty()) {
    absl::StatusOr<ddlm::JobSpec> loaded = ddlm::LoadJobSpec(absl::GetFlag(FLAGS_config));
    if (!loaded.ok()) {
      std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
      return 1;
    }
    spec = *loaded;
  }
  spec.mutable_data()->set_path(absl::GetFlag(FLAGS_data));
  if (!absl::GetFlag(FLAGS_precision).empty()) {
    ddlm::Precision precision;
    if (!ddlm::Precision_Parse(absl::AsciiStrToUpper(absl::GetFlag(FLAGS_precision)), &precision)) {
      std::fprintf(stderr, "--precision must be fp32 or bf16\n");
      return 2;
    }
    spec.mutable_schedule()->set_precision(precision);
  }
  ddlm::ApplyDefaults(&spec);
  absl::StatusOr<torch::Device> device = ddlm::ResolveDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) {
    std::fprintf(stderr, "--device: %s\n", std::string(device.status().message()).c_str());
    return 2;
  }
  const bool cuda = device->is_cuda();
  auto sync = [&] {
    if (cuda) torch::cuda::synchronize(device->index());
  };
  const torch::ScalarType peak_dtype = spec.schedule().precision() == ddlm::BF16 ? torch::kBFloat16 : torch::kFloat;
  std::printf("device %s, precision %s\n", ddlm::DescribeDevice(*device).c_str(),
              ddlm::Precision_Name(spec.schedule().precision()).c_str());
  absl::StatusOr<ddlm::Corpus> corpus = ddlm::LoadCorpus(spec.data().path());
  if (!corpus.ok()) {
    std::fprintf(stderr, "%s\n", std::string(corpus.status().message()).c_str());
    return 1;
  }
  const int64_t ntoken = corpus->dictionary.size();
  const int64_t rows = spec.data().bptt() * spec.data().batch_size();
  const int64_t peak_n = absl::GetFlag(FLAGS_peak_size);
  const double peak = ddlm::MatmulGflops(peak_n, peak_n, peak_n, 5, *device, peak_dtype);
  const int64_t dec_in = spec.model().type() == ddlm::TRANSFORMER ? spec.model().emsize() : spec.model().nhid();
  const double decoder = ddlm::MatmulGflops(rows, dec_in, ntoken, 5, *device, peak_dtype);
  std::printf("matmul peak   %lldx%lld %s: %7.1f GFLOP/s\n", static_cast<long long>(peak_n),
              static_cast<long long>(peak_n), c10::toString(peak_dtype), peak);
  std::printf("decoder shape %lldx%lld by %lldx%lld: %7.1f GFLOP/s\n", static_cast<long long>(rows),
              static_cast<long long>(dec_in), static_cast<long long>(dec_in), static_cast<long long>(ntoken), decoder);

  const int warmup = absl::GetFlag(FLAGS_warmup);
  const int batches = absl::GetFlag(FLAGS_batches);
  spec.mutable_schedule()->set_max_batches_per_epoch(warmup + batches);
  spec.mutable_schedule()->set_log_interval(1 << 30);
  torch::Tensor train = ddlm::Batchify(corpus->train, spec.data().batch_size());
  absl::StatusOr<std::unique_ptr<ddlm::Trainer>> trainer = ddlm::Trainer::Create(spec, corpus->dictionary, *device);
  if (!trainer.ok()) {
    std::fprintf(stderr, "%s\n", std::string(trainer.status().message()).c_str());
    return 1;
  }
  // Warm-up, then the timed run through the real training loop.
  int64_t step = 0;
  Clock::time_point t_start = Clock::now();  // Used as is when --warmup=0.
  (*trainer)->set_step_callback([&](const ddlm::Trainer&) {
    if (++step == warmup) {
      sync();  // The timed steps start with the device idle.
      t_start = Clock::now();
    }
    return absl::OkStatus();
  });
  absl::StatusOr<ddlm::EpochSummary> summary = (*trainer)->TrainEpoch(train);
  if (!summary.ok()) {
    std::fprintf(stderr, "%s\n", std::string(summary.status().message()).c_str());
    return 1;
  }
  sync();
  const double seconds = Seconds(t_start, Clock::now());
  const double tokens = static_cast<double>(batches) * rows;
  const double flops_per_token = 3 * ForwardFlopsPerToken(spec.model(), ntoken, spec.data().bptt());
  const double tok_s = tokens / seconds;
  const double gflops = tok_s * flops_per_token / 1e9;
  std::printf("train %s: %d batches of %lld tokens in %.2f s: %.1f ms/batch, %.0f tokens/s\n",
              ddlm::ModelType_Name(spec.model().type()).c_str(), batches, static_cast<long long>(rows), seconds,
              seconds * 1000 / batches, tok_s);
  std::printf(
      "model FLOPs %.1f MFLOP/token (fwd+bwd) -> %.1f GFLOP/s = %.0f%% of the matmul peak, %.0f%% of "
      "the decoder-shape rate\n",
      flops_per_token / 1e6, gflops, 100 * gflops / peak, 100 * gflops / decoder);

  // Where one step's time goes, timed phase by phase on a fresh model.
  ddlm::LanguageModelImpl& model = (*trainer)->model();
  model.train();
  auto params = model.parameters();
  ddlm::RecurrentState state = model.InitState(spec.data().batch_size());
  train = train.to(*device);
  double t_fwd = 0, t_loss = 0, t_bwd = 0, t_upd = 0;
  const int phase_batches = std::min(batches, 10);
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  if (!absl::GetFlag(FLAGS_trace).empty()) {
    profile = std::make_unique<torch::autograd::profiler::RecordProfile>(absl::GetFlag(FLAGS_trace));
  }
  // On a GPU the trainer runs the decoder under autocast, unfused (the fused one is the
  // CPU's): so here, whatever --loss_block_rows says.
  const int64_t slice = device->is_cpu() ? absl::GetFlag(FLAGS_loss_block_rows) : 0;
  for (int b = 0; b < phase_batches; ++b) {
    ddlm::Batch batch = ddlm::GetBatch(train, b * spec.data().bptt(), spec.data().bptt());
    model.zero_grad(true);
    ddlm::DetachState(&state);
    sync();
    auto t0 = Clock::now();
    // As the trainer's step runs it (its CPU path): the model under autocast for BF16,
    // the fused decoder + loss with bfloat16 GEMMs. (The update below stays dense.)
    const bool bf16 = spec.schedule().precision() == ddlm::BF16;
    ddlm::LanguageModelImpl::DecoderInput d;
    {
      ddlm::AutocastGuard autocast(*device, spec.schedule().precision());
      d = model.Features(batch.data, &state);
    }
    sync();
    auto t1 = Clock::now();
    torch::Tensor loss = slice > 0 ? ddlm::LinearCrossEntropy(d.hidden, d.weight, d.bias, batch.targets, slice, bf16)
                                   : ddlm::CrossEntropy(
                                         [&] {
                                           ddlm::AutocastGuard autocast(*device, spec.schedule().precision());
                                           return torch::linear(d.hidden, d.weight, d.bias);
                                         }(),
                                         batch.targets);
    sync();
    auto t2 = Clock::now();
    loss.backward();
    sync();
    auto t3 = Clock::now();
    {
      torch::NoGradGuard no_grad;
      torch::nn::utils::clip_grad_norm_(params, spec.optimizer().clip());
      for (auto& p : params) p.add_(p.grad(), -0.0);
    }
    sync();
    auto t4 = Clock::now();
    t_fwd += Seconds(t0, t1), t_loss += Seconds(t1, t2), t_bwd += Seconds(t2, t3), t_upd += Seconds(t3, t4);
  }
  profile.reset();
  const double n = phase_batches / 1000.0;
  std::printf(
      "per step (%s): forward %.1f ms | decoder+loss %.1f ms | backward %.1f ms | "
      "clip+update %.1f ms\n",
      slice > 0 ? absl::StrCat("fused loss, block rows ", slice).c_str() : "unfused loss", t_fwd / n, t_loss / n,
      t_bwd / n, t_upd / n);
  return 0;
}
