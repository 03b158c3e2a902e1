#ifndef DDLM_COMMON_TRAINING_GENERATE_H_
#define DDLM_COMMON_TRAINING_GENERATE_H_

// Sampling text from a language model, as word_language_model's generate.py does:
// start from a random word, feed each sampled word back in, sample from
// exp(log_prob / temperature). Adds top-k filtering, and keeps the Transformer's causal
// mask (upstream drops it when sampling). Uses its own generator seeded from `seed`,
// so the same model, seed and options give the same words.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/training/model.h"

namespace ddlm {

struct GenerateOptions {
  int64_t words = 1000;
  double temperature = 1.0;  // >= 1e-3; higher is more diverse.
  int64_t top_k = 0;         // 0: sample from the whole vocabulary.
  uint64_t seed = 1111;
  // Transformer only: the most recent words it sees (0: as many as its positional
  // table holds). Set it to the bptt it was trained with: it has never seen longer
  // contexts. Recurrent models carry their state instead and see one word per step.
  int64_t max_context = 0;
};

// INVALID_ARGUMENT for a temperature below 1e-3, negative words, top_k or max_context.
absl::StatusOr<std::vector<int64_t>> GenerateIds(LanguageModelImpl& model, const GenerateOptions& options);

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_GENERATE_H_
