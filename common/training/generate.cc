#include "common/training/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ddlm {

absl::StatusOr<std::vector<int64_t>> GenerateIds(LanguageModelImpl& model, const GenerateOptions& options) {
  if (!(options.temperature >= 1e-3)) {  // Also rejects NaN.
    return absl::InvalidArgumentError(absl::StrCat("temperature must be >= 1e-3, got ", options.temperature));
  }
  if (options.words < 0) return absl::InvalidArgumentError("words must be >= 0");
  if (options.top_k < 0) return absl::InvalidArgumentError("top_k must be >= 0");
  if (options.max_context < 0) return absl::InvalidArgumentError("max_context must be >= 0");
  const int64_t max_context =
      options.max_context > 0 ? std::min(options.max_context, kMaxTransformerLength) : kMaxTransformerLength;
  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  model.eval();
  torch::NoGradGuard no_grad;
  const int64_t ntoken = model.ntoken();
  torch::Tensor input = torch::randint(ntoken, {1, 1}, gen, torch::kInt64);
  RecurrentState state = model.InitState(1);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < options.words; ++i) {
    // Recurrent: the last word, with the state carried over. Transformer: the latest
    // max_context words, and the last position's row. (The whole window runs again
    // each word: without a key/value cache the model cannot reuse the previous step's
    // work; the crop bounds that cost.)
    torch::Tensor log_probs = model.Forward(input, &state);
    // Upstream samples from exp(log_prob / T); softmax(log_prob / T) is the same
    // distribution without underflowing to all zeros at small T.
    torch::Tensor weights = torch::softmax(log_probs[log_probs.size(0) - 1].div(options.temperature), 0);
    if (options.top_k > 0 && options.top_k < ntoken) {
      auto [values, indices] = weights.topk(options.top_k);
      weights = torch::zeros_like(weights).scatter_(0, indices, values);
    }
    const int64_t word = torch::multinomial(weights, 1, /*replacement=*/false, gen).item<int64_t>();
    out.push_back(word);
    torch::Tensor next = torch::full({1, 1}, word, torch::kInt64);
    if (model.is_recurrent()) {
      input = next;
    } else {
      const int64_t keep = std::min(input.size(0), max_context - 1);
      input = torch::cat({input.narrow(0, input.size(0) - keep, keep), next}, 0);
    }
  }
  return out;
}

}  // namespace ddlm
