// ddlm_generate: uses a checkpoint file, flag-compatible with word_language_model's
// generate.py (plus a prompt, top-k, top-p, a repetition penalty and a stop at <eos>),
// and answers the coordinator's other model queries for a file too: scoring text,
// attention maps and log-probability maps. It answers with the coordinator's own code
// (common/inference/model_queries.h), so the same request gives the same words. The
// vocabulary travels inside the checkpoint, so --data is optional; when given, it must
// be the training vocabulary.
//
//   ddlm_generate --checkpoint model.pt --words 100 --temperature 0.8 --outf -
//   ddlm_generate --checkpoint model.pt --prompt "the meaning of" --top_p 0.9 --stream
//   ddlm_generate --checkpoint model.pt --score "the cat sat on the mat" --top 5 [--json]
//   ddlm_generate --checkpoint model.pt --score_file test.txt
//   ddlm_generate --checkpoint model.pt --attention "the cat sat" --layer 0 --head 1 --out a.png
//   ddlm_generate --checkpoint model.pt --logprobs "the cat sat" --top 8 --out p.png

#include <algorithm>
#include <cstdio>
#include <limits>

#include <glog/logging.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/base/cli.h"
#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/base/file_io.h"
#include "common/inference/model_queries.h"
#include "common/inference/render.h"
#include "common/inference/text_model.h"
#include "common/plots/heatmap_plot.h"
#include "common/training/checkpoint.h"
#include "common/training/threading.h"

ABSL_FLAG(std::string, data, "", "Optional corpus directory; checked against the checkpoint's vocabulary.");
ABSL_FLAG(std::string, checkpoint, "./model.pt", "Model checkpoint to use.");
ABSL_FLAG(std::string, outf, "generated.txt", "Output file for generated text ('-' for stdout).");
ABSL_FLAG(int64_t, words, 1000, "Number of words to generate.");
ABSL_FLAG(uint64_t, seed, 1111, "Random seed.");
ABSL_FLAG(double, temperature, 1.0, "Temperature; higher will increase diversity (>= 1e-3).");
ABSL_FLAG(int64_t, top_k, 0, "Sample only from the k most likely words (0: all).");
ABSL_FLAG(double, top_p, 1.0, "Sample only from the most likely words holding this much probability (1: all).");
ABSL_FLAG(double, repetition_penalty, 1.0, "Penalty (>= 1) on words already in the prompt or the output.");
ABSL_FLAG(std::string, prompt, "", "Text the model reads before it generates (empty: a random first word).");
ABSL_FLAG(bool, stop_at_eos, false, "Stop after the first <eos> generated.");
ABSL_FLAG(bool, stream, false, "With --outf=-: print each word as it is made.");
ABSL_FLAG(std::string, score, "", "Score this text instead of generating: each token's log-probability.");
ABSL_FLAG(std::string, score_file, "", "Score this file instead of generating (totals; --tokens to list).");
ABSL_FLAG(bool, tokens, false, "With --score_file: list each token too.");
ABSL_FLAG(int32_t, top, 0, "With --score: list the N most likely next words at each position; --logprobs: rows.");
ABSL_FLAG(bool, json, false, "With --score or --attention: print the answer as JSON.");
ABSL_FLAG(std::string, attention, "", "Draw (or, with --json, print) the Transformer's attention over this text.");
ABSL_FLAG(int32_t, layer, 0, "With --attention: the layer (0-based).");
ABSL_FLAG(int32_t, head, 0, "With --attention: the head (0-based).");
ABSL_FLAG(std::string, logprobs, "", "Draw the log-probability map (positions x top words) of this text.");
ABSL_FLAG(std::string, out, "", "With --attention or --logprobs: the PNG to draw.");
ABSL_FLAG(int64_t, log_interval, 100, "Reporting interval.");
ABSL_FLAG(int32_t, threads, 0, "BLAS threads (0: one per core); LibTorch's own pool stays at 1.");

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "ddlm_generate: %s\n", std::string(status.message()).c_str());
  return 1;
}

// No caps but the model's own for a local file: the coordinator's protect a shared server.
ddlm::QueryLimits LocalLimits() {
  ddlm::QueryLimits limits;
  limits.max_words = std::numeric_limits<int32_t>::max();
  limits.max_text_bytes = std::numeric_limits<int64_t>::max();
  limits.max_listed_tokens = std::numeric_limits<int64_t>::max();
  limits.max_file_bytes = std::numeric_limits<int64_t>::max();
  limits.max_reply_bytes = std::numeric_limits<int64_t>::max();
  return limits;
}

int Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : Fail(absl::DataLossError("writing to stdout failed"));
}

int Draw(const absl::StatusOr<ddlm::Heatmap>& heatmap, const std::string& out) {
  if (!heatmap.ok()) return Fail(heatmap.status());
  if (absl::Status drawn = ddlm::PlotHeatmap(*heatmap, out); !drawn.ok()) return Fail(drawn);
  std::printf("drawn to %s\n", out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  ddlm::ParseFlagsOrExit(argc, argv, "ddlm_generate",
                         "Generates text from a ddlm checkpoint (word_language_model's generate.py), or scores "
                         "text, or draws attention and log-probability maps.");
  ddlm::ConfigureThreads(absl::GetFlag(FLAGS_threads));
  ddlm::LogBlasInfo();

  absl::StatusOr<ddlm::Checkpoint> checkpoint = ddlm::ReadCheckpointFile(absl::GetFlag(FLAGS_checkpoint));
  if (!checkpoint.ok()) return Fail(checkpoint.status());
  absl::StatusOr<ddlm::TextModel> model = ddlm::LoadTextModel(*checkpoint);
  if (!model.ok()) return Fail(model.status());
  if (!absl::GetFlag(FLAGS_data).empty()) {
    absl::StatusOr<ddlm::Corpus> corpus = ddlm::LoadCorpus(absl::GetFlag(FLAGS_data));
    if (!corpus.ok()) return Fail(corpus.status());
    absl::Status same = ddlm::CheckCompatible(*checkpoint, corpus->dictionary.Fingerprint(), corpus->dictionary.size(),
                                              checkpoint->header.spec().model());
    if (!same.ok()) return Fail(same);
  }
  const std::string out = absl::GetFlag(FLAGS_out);
  const int modes = (!absl::GetFlag(FLAGS_score).empty() || !absl::GetFlag(FLAGS_score_file).empty()) +
                    !absl::GetFlag(FLAGS_attention).empty() + !absl::GetFlag(FLAGS_logprobs).empty();
  if (modes > 1 || (!absl::GetFlag(FLAGS_score).empty() && !absl::GetFlag(FLAGS_score_file).empty())) {
    return Fail(absl::InvalidArgumentError("give one of --score, --score_file, --attention, --logprobs"));
  }

  if (!absl::GetFlag(FLAGS_score).empty() || !absl::GetFlag(FLAGS_score_file).empty() ||
      !absl::GetFlag(FLAGS_logprobs).empty()) {
    ddlm::ScoreTextRequest request;
    std::string text;
    const bool drawing = !absl::GetFlag(FLAGS_logprobs).empty();
    if (drawing) {
      request.set_text(text = absl::GetFlag(FLAGS_logprobs));
      request.set_top_n(absl::GetFlag(FLAGS_top) > 0 ? absl::GetFlag(FLAGS_top) : 8);
      if (out.empty()) return Fail(absl::InvalidArgumentError("--logprobs needs --out FILE.png"));
    } else if (!absl::GetFlag(FLAGS_score).empty()) {
      request.set_text(text = absl::GetFlag(FLAGS_score));
      request.set_top_n(absl::GetFlag(FLAGS_top));
    } else {
      request.set_file(absl::GetFlag(FLAGS_score_file));
      request.set_top_n(absl::GetFlag(FLAGS_top));
      request.set_tokens(absl::GetFlag(FLAGS_tokens));
      absl::StatusOr<std::string> contents = ddlm::ReadFile(request.file());
      if (!contents.ok()) return Fail(contents.status());
      text = std::move(*contents);
    }
    absl::StatusOr<ddlm::ScoreTextResponse> scored = ddlm::RunScore(*model, request, text, LocalLimits());
    if (!scored.ok()) return Fail(scored.status());
    scored->set_checkpoint_id(absl::GetFlag(FLAGS_checkpoint));
    if (drawing) return Draw(ddlm::LogProbHeatmap(*scored), out);
    return Print(absl::GetFlag(FLAGS_json) ? ddlm::AsJson(*scored) + "\n" : ddlm::ScoreTable(*scored));
  }
  if (!absl::GetFlag(FLAGS_attention).empty()) {
    ddlm::AttentionRequest request;
    request.set_text(absl::GetFlag(FLAGS_attention));
    if (!absl::GetFlag(FLAGS_json)) {
      request.add_layers(absl::GetFlag(FLAGS_layer));
      request.add_heads(absl::GetFlag(FLAGS_head));
      if (out.empty()) return Fail(absl::InvalidArgumentError("--attention needs --out FILE.png (or --json)"));
    }
    absl::StatusOr<ddlm::AttentionResponse> weights = ddlm::RunAttention(*model, request, LocalLimits());
    if (!weights.ok()) return Fail(weights.status());
    weights->set_checkpoint_id(absl::GetFlag(FLAGS_checkpoint));
    if (absl::GetFlag(FLAGS_json)) return Print(ddlm::AsJson(*weights) + "\n");
    return Draw(ddlm::AttentionHeatmap(*weights, absl::GetFlag(FLAGS_layer), absl::GetFlag(FLAGS_head)), out);
  }

  ddlm::GenerateRequest request;
  request.set_words(static_cast<int32_t>(std::min<int64_t>(absl::GetFlag(FLAGS_words), INT32_MAX)));
  if (absl::GetFlag(FLAGS_words) < 1 || absl::GetFlag(FLAGS_words) > INT32_MAX) {
    return Fail(absl::InvalidArgumentError("--words must be in [1, 2147483647]"));
  }
  request.set_temperature(absl::GetFlag(FLAGS_temperature));
  request.set_top_k(static_cast<int32_t>(absl::GetFlag(FLAGS_top_k)));
  request.set_top_p(absl::GetFlag(FLAGS_top_p));
  request.set_repetition_penalty(absl::GetFlag(FLAGS_repetition_penalty));
  request.set_seed(absl::GetFlag(FLAGS_seed));
  request.set_prompt(absl::GetFlag(FLAGS_prompt));
  request.set_stop_at_eos(absl::GetFlag(FLAGS_stop_at_eos));
  const std::string outf = absl::GetFlag(FLAGS_outf);
  const int64_t log_interval = std::max<int64_t>(1, absl::GetFlag(FLAGS_log_interval));
  const bool stream = absl::GetFlag(FLAGS_stream) && outf == "-";
  int64_t made = 0;
  absl::StatusOr<ddlm::GenerateResponse> generated =
      ddlm::RunGenerate(*model, request, LocalLimits(), [&](const ddlm::GenerateResponse& piece) {
        ++made;
        if (stream) {
          std::fwrite(piece.text().data(), 1, piece.text().size(), stdout);
          std::fflush(stdout);
        } else if (outf != "-" && made % log_interval == 0) {
          std::printf("| Generated %lld/%lld words\n", static_cast<long long>(made),
                      static_cast<long long>(request.words()));
        }
        return true;
      });
  if (!generated.ok()) return Fail(generated.status());
  for (const std::string& word : generated->unknown_words()) {
    std::fprintf(stderr, "ddlm_generate: '%s' is not in the vocabulary: read as <unk>\n", word.c_str());
  }
  if (stream) return std::ferror(stdout) ? Fail(absl::DataLossError("writing to stdout failed")) : 0;
  if (outf == "-") return Print(generated->text());
  // Atomic: a failed run never leaves a torn file in place of an earlier one.
  absl::Status written = ddlm::WriteFileAtomically(outf, generated->text());
  if (!written.ok()) return Fail(written);
  return 0;
}
