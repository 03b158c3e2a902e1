// How fast a model generates, with incremental decoding (the Transformer's key/value
// cache, the recurrent models' carried state) and without it (the Transformer
// recomputes its whole context for every word, as ddlm did before it had the cache). For
// each model type: words/s over --words words from a prompt, the two modes interleaved
// (before, after, before, after, ...) for --rounds rounds, then the median ratio and its
// range, and the matmul peak of this machine as the ceiling:
//
//   bazel run -c opt //common/benchmarks:decode_throughput -- --words=1000 --rounds=3
//
// Models: WikiText-2's vocabulary size (33,278 words), emsize = nhid = 200, 2 layers,
// 2 heads, bptt 35 (the Transformer's window), upstream's defaults. Weights are random:
// speed does not depend on them. Recurrent models decode the same way in both modes
// (their state is how they read), so their ratio is 1 up to noise.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "absl/flags/flag.h"
#include "common/base/cli.h"
#include "common/benchmarks/matmul_peak.h"
#include "common/training/generate.h"
#include "common/training/model.h"
#include "common/training/threading.h"

ABSL_FLAG(int64_t, words, 1000, "Words generated per run.");
ABSL_FLAG(int32_t, rounds, 3, "Interleaved rounds of (without, with) per model type.");
ABSL_FLAG(int64_t, vocabulary, 33278, "Vocabulary size (WikiText-2's by default).");
ABSL_FLAG(int32_t, size, 200, "emsize = nhid.");
ABSL_FLAG(int64_t, bptt, 35, "The Transformer's window.");
ABSL_FLAG(int32_t, threads, 0, "BLAS threads (0: one per core).");

namespace {

double WordsPerSecond(ddlm::LanguageModelImpl& model, bool cache) {
  ddlm::GenerateOptions options;
  options.words = absl::GetFlag(FLAGS_words);
  options.max_context = absl::GetFlag(FLAGS_bptt);
  options.use_cache = cache;
  options.prompt = {1, 2, 3, 4, 5};
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<int64_t>> ids = ddlm::GenerateIds(model, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!ids.ok()) {
    std::fprintf(stderr, "%s\n", std::string(ids.status().message()).c_str());
    std::exit(1);
  }
  return static_cast<double>(ids->size()) / seconds;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  ddlm::ParseFlagsOrExit(argc, argv, "decode_throughput", "Words/s with and without incremental decoding.");
  ddlm::ConfigureThreads(absl::GetFlag(FLAGS_threads));
  std::printf("matmul peak: %.1f GFLOP/s (2048^2 sgemm)\n", ddlm::MatmulGflops(2048, 2048, 2048, 5));
  std::printf("%-10s %14s %14s %8s %18s\n", "model", "before w/s", "after w/s", "ratio", "ratio range");
  for (ddlm::ModelType type : {ddlm::RNN_TANH, ddlm::LSTM, ddlm::GRU, ddlm::TRANSFORMER}) {
    ddlm::ModelConfig config;
    config.set_type(type);
    config.set_emsize(absl::GetFlag(FLAGS_size));
    config.set_nhid(absl::GetFlag(FLAGS_size));
    config.set_nlayers(2);
    config.set_nhead(2);
    config.set_dropout(0.2f);
    torch::manual_seed(1);
    auto model = ddlm::BuildModel(config, absl::GetFlag(FLAGS_vocabulary));
    if (!model.ok()) return 1;
    std::vector<double> before, after, ratios;
    WordsPerSecond(**model, true);  // Warm-up: allocator, BLAS.
    for (int r = 0; r < absl::GetFlag(FLAGS_rounds); ++r) {
      before.push_back(WordsPerSecond(**model, false));
      after.push_back(WordsPerSecond(**model, true));
      ratios.push_back(after.back() / before.back());
    }
    std::printf("%-10s %14.1f %14.1f %7.2fx %8.2f..%.2fx\n", ddlm::ModelType_Name(type).c_str(), Median(before),
                Median(after), Median(ratios), *std::min_element(ratios.begin(), ratios.end()),
                *std::max_element(ratios.begin(), ratios.end()));
  }
  return 0;
}
