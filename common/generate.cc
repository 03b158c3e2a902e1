#include "common/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/str_cat.h"

namespace ddlm {

absl::StatusOr<std::vector<int64_t>> GenerateIds(LanguageModelImpl& model,
                                                 const GenerateOptions& options) {
  if (!(options.temperature >= 1e-3)) {  // Also rejects NaN.
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be >= 1e-3, got ", options.temperature));
  }
  if (options.words < 0) return absl::InvalidArgumentError("words must be >= 0");
  if (options.top_k < 0) return absl::InvalidArgumentError("top_k must be >= 0");
  at::Generator gen = at::detail::createCPUGenerator(options.seed);
  model.eval();
  torch::NoGradGuard no_grad;
  const int64_t ntoken = model.ntoken();
  torch::Tensor input = torch::randint(ntoken, {1, 1}, gen, torch::kInt64);
  RecurrentState state = model.InitState(1);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < options.words; ++i) {
    // Transformer: the whole context (up to the positional table), last position's row.
    torch::Tensor context = input;
    if (!model.is_recurrent() && input.size(0) > kMaxTransformerLength) {
      context = input.narrow(0, input.size(0) - kMaxTransformerLength, kMaxTransformerLength);
    }
    torch::Tensor log_probs = model.Forward(context, &state);
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
    input = model.is_recurrent() ? next : torch::cat({input, next}, 0);
  }
  return out;
}

}  // namespace ddlm
