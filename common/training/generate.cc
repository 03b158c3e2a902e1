#include "common/training/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace ddlm {
namespace {

torch::Tensor AsInput(const std::vector<int64_t>& ids) {
  return torch::tensor(ids, torch::kInt64).unsqueeze(1);  // [len, 1]
}

// One word drawn from the scores `logits` [ntoken] as `options` say.
int64_t Sample(const torch::Tensor& logits, const std::vector<int64_t>& seen, const GenerateOptions& options,
               at::Generator& gen) {
  torch::Tensor scores = logits.to(torch::kFloat);
  if (options.repetition_penalty != 1.0 && !seen.empty()) {
    scores = scores.clone();
    torch::Tensor index = torch::tensor(seen, torch::kInt64);
    torch::Tensor picked = scores.index_select(0, index);
    picked = torch::where(picked > 0, picked / options.repetition_penalty, picked * options.repetition_penalty);
    scores.index_copy_(0, index, picked);
  }
  // Upstream samples from exp(log_prob / T); softmax(logits / T) is the same
  // distribution without underflowing to all zeros at small T.
  torch::Tensor weights = torch::softmax(scores.div(options.temperature), 0);
  const int64_t ntoken = weights.size(0);
  if (options.top_k > 0 && options.top_k < ntoken) {
    auto [values, indices] = weights.topk(options.top_k);
    weights = torch::zeros_like(weights).scatter_(0, indices, values);
  }
  if (options.top_p < 1.0) {
    auto [sorted, indices] = weights.sort(/*dim=*/0, /*descending=*/true);
    // Keep a word while the mass before it is below top_p: the smallest prefix that
    // reaches top_p, and always the most likely word.
    torch::Tensor before = sorted.cumsum(0) - sorted;
    torch::Tensor keep = before.lt(options.top_p * sorted.sum().item<double>());
    keep[0] = true;
    weights = torch::zeros_like(weights).scatter_(0, indices, sorted * keep);
  }
  return torch::multinomial(weights, 1, /*replacement=*/false, gen).item<int64_t>();
}

}  // namespace

bool AppendToContext(std::vector<int64_t>& context, int64_t id, int64_t max_context) {
  bool cut = false;
  if (static_cast<int64_t>(context.size()) >= max_context) {
    const int64_t keep = max_context / 2;
    context.erase(context.begin(), context.end() - keep);
    cut = true;
  }
  context.push_back(id);
  return cut;
}

torch::Tensor NextWordLogits(LanguageModelImpl& model, const std::vector<int64_t>& context) {
  torch::NoGradGuard no_grad;
  RecurrentState state = model.InitState(1);
  torch::Tensor logits = model.Logits(AsInput(context), &state);
  return logits[logits.size(0) - 1];
}

absl::StatusOr<std::vector<int64_t>> GenerateIds(LanguageModelImpl& model, const GenerateOptions& options) {
  if (!(options.temperature >= 1e-3)) {  // Also rejects NaN.
    return absl::InvalidArgumentError(absl::StrCat("temperature must be >= 1e-3, got ", options.temperature));
  }
  if (options.words < 0) return absl::InvalidArgumentError("words must be >= 0");
  if (options.top_k < 0) return absl::InvalidArgumentError("top_k must be >= 0");
  if (!(options.top_p > 0 && options.top_p <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", options.top_p));
  }
  if (!(options.repetition_penalty >= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition_penalty must be >= 1, got ", options.repetition_penalty));
  }
  if (options.max_context < 0) return absl::InvalidArgumentError("max_context must be >= 0");
  const int64_t ntoken = model.ntoken();
  for (int64_t id : options.prompt) {
    if (id < 0 || id >= ntoken) {
      return absl::InvalidArgumentError(absl::StrCat("prompt id ", id, " is outside the vocabulary of ", ntoken));
    }
  }
  const int64_t max_context =
      options.max_context > 0 ? std::min(options.max_context, kMaxTransformerLength) : kMaxTransformerLength;
  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  model.eval();
  torch::NoGradGuard no_grad;
  const bool recurrent = model.is_recurrent();

  // The words the model reads first, and every word it has seen (for the penalty).
  std::vector<int64_t> context = options.prompt;
  if (context.empty()) context.push_back(torch::randint(ntoken, {1, 1}, gen, torch::kInt64).item<int64_t>());
  std::vector<int64_t> seen;
  std::vector<bool> is_seen(static_cast<size_t>(ntoken), false);
  auto mark_seen = [&](int64_t id) {
    if (!is_seen[static_cast<size_t>(id)]) {
      is_seen[static_cast<size_t>(id)] = true;
      seen.push_back(id);
    }
  };
  if (!options.prompt.empty()) {
    for (int64_t id : options.prompt) mark_seen(id);
  }
  if (!recurrent && static_cast<int64_t>(context.size()) > max_context) {
    context.erase(context.begin(), context.end() - max_context);
  }

  DecodeState state = model.InitDecodeState();
  auto last_row = [](const torch::Tensor& logits) { return logits[logits.size(0) - 1]; };
  // Recurrent models always carry their state (that is how they read). The
  // Transformer without the cache recomputes its whole context for every word.
  const bool incremental = recurrent || options.use_cache;
  torch::Tensor logits = incremental ? last_row(model.DecodeLogits(AsInput(context), &state, /*last_only=*/true))
                                     : NextWordLogits(model, context);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < options.words; ++i) {
    const int64_t word = Sample(logits, seen, options, gen);
    out.push_back(word);
    mark_seen(word);
    if (options.on_word && !options.on_word(word)) break;
    if (word == options.stop_id || i + 1 == options.words) break;
    if (recurrent) {
      logits = last_row(model.DecodeLogits(AsInput({word}), &state, /*last_only=*/true));
      continue;
    }
    const bool cut = AppendToContext(context, word, max_context);
    if (!options.use_cache) {
      logits = NextWordLogits(model, context);
    } else if (cut) {
      state = model.InitDecodeState();
      logits = last_row(model.DecodeLogits(AsInput(context), &state, /*last_only=*/true));
    } else {
      logits = last_row(model.DecodeLogits(AsInput({word}), &state, /*last_only=*/true));
    }
  }
  return out;
}

double ScoredText::perplexity() const {
  if (scored == 0) return std::numeric_limits<double>::quiet_NaN();
  return std::exp(loss_sum / static_cast<double>(scored));
}

absl::StatusOr<ScoredText> ScoreIds(LanguageModelImpl& model, const std::vector<int64_t>& ids, int64_t bptt,
                                    int64_t top_n, bool per_token) {
  if (ids.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat("scoring needs at least 2 tokens, got ", ids.size()));
  }
  if (bptt < 1) return absl::InvalidArgumentError(absl::StrCat("bptt must be >= 1, got ", bptt));
  if (top_n < 0) return absl::InvalidArgumentError(absl::StrCat("top_n must be >= 0, got ", top_n));
  top_n = per_token ? std::min(top_n, model.ntoken()) : 0;
  model.eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor data = torch::tensor(ids, torch::kInt64);
  const int64_t n = data.size(0);
  RecurrentState state = model.InitState(1);
  ScoredText scored;
  if (per_token) scored.tokens.reserve(ids.size() - 1);
  for (int64_t i = 0; i < n - 1; i += bptt) {
    const int64_t len = std::min(bptt, n - 1 - i);
    torch::Tensor log_probs = torch::log_softmax(model.Logits(data.narrow(0, i, len).unsqueeze(1), &state), 1);
    torch::Tensor targets = data.narrow(0, i + 1, len);
    torch::Tensor picked = log_probs.gather(1, targets.unsqueeze(1)).squeeze(1).to(torch::kDouble).contiguous();
    torch::Tensor top_values, top_indices;
    if (top_n > 0) {
      std::tie(top_values, top_indices) = log_probs.topk(top_n, 1);
      top_values = top_values.to(torch::kDouble).contiguous();
      top_indices = top_indices.contiguous();
    }
    const double* p = picked.data_ptr<double>();
    scored.scored += len;
    for (int64_t t = 0; t < len; ++t) {
      scored.loss_sum -= p[t];
      if (!per_token) continue;
      TokenScore score;
      score.log_prob = p[t];
      if (top_n > 0) {
        const double* values = top_values[t].data_ptr<double>();
        const int64_t* indices = top_indices[t].data_ptr<int64_t>();
        for (int64_t k = 0; k < top_n; ++k) score.top.emplace_back(indices[k], values[k]);
      }
      scored.tokens.push_back(std::move(score));
    }
  }
  return scored;
}

}  // namespace ddlm
