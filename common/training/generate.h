#ifndef DDLM_COMMON_TRAINING_GENERATE_H_
#define DDLM_COMMON_TRAINING_GENERATE_H_

// Using a trained language model: sampling text (word_language_model's generate.py,
// plus prompts, top-k, top-p, a repetition penalty and a stop word) and scoring text.
//
// Sampling: start from a prompt (or, as generate.py, from one random word), feed each
// sampled word back in, sample from softmax(logits / temperature). Uses its own
// generator seeded from `seed`, so the same model, seed and options give the same words.
// Decoding is incremental (LanguageModelImpl::DecodeLogits): recurrent models carry
// their state; the Transformer keeps each layer's keys and values, so a word costs one
// position rather than a pass over the whole context.
//
// The Transformer's context: the model has only ever seen `max_context` (its bptt)
// words at absolute positions 0.., so a context that would grow past max_context is cut
// to its latest max_context / 2 words, which are encoded again from position 0 (once),
// and grows from there: once its context has first filled, the model always sees
// between max_context / 2 + 1 and max_context words. (A window sliding by one word would move every word to a new
// position, which no cache survives: each word would cost the whole window again.)
// GenerateOptions.use_cache = false recomputes the same contexts from scratch for every
// word: the same words, the scores within float rounding (tested).
//
// Threading: free functions; the model is used from the caller's thread.

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "common/training/model.h"

namespace ddlm {

struct GenerateOptions {
  int64_t words = 1000;
  double temperature = 1.0;  // >= 1e-3; higher is more diverse.
  int64_t top_k = 0;         // 0: sample from the whole vocabulary.
  // Nucleus sampling: only the most likely words whose probabilities sum to top_p
  // (the first always kept). 1: off. In (0, 1].
  double top_p = 1.0;
  // CTRL's penalty on words already in the prompt or the output: a positive score is
  // divided by it, a negative one multiplied. 1: off. >= 1.
  double repetition_penalty = 1.0;
  uint64_t seed = 1111;
  // Transformer only: the most words it sees (0: as many as its positional table
  // holds). Set it to the bptt it was trained with (see above).
  int64_t max_context = 0;
  // Ids the model reads before it generates; empty: one random word (generate.py).
  std::vector<int64_t> prompt;
  // >= 0: stop after generating this id (e.g. <eos>), which is included.
  int64_t stop_id = -1;
  // false: recompute the context from scratch for every word (the benchmark's baseline).
  bool use_cache = true;
  // Called with each word as it is made; returning false stops generation there.
  std::function<bool(int64_t id)> on_word;
};

// INVALID_ARGUMENT for a temperature below 1e-3, negative words, top_k or max_context,
// top_p outside (0, 1], a repetition penalty below 1, or a prompt id outside the
// vocabulary.
absl::StatusOr<std::vector<int64_t>> GenerateIds(LanguageModelImpl& model, const GenerateOptions& options);

// The scores the model gives `context` (ids, oldest first) for the next word: the last
// row of Logits over the Transformer's context as GenerateIds keeps it, or of a
// recurrent model's pass over all of it. What GenerateIds samples from, computed from
// scratch (tests compare the two).
torch::Tensor NextWordLogits(LanguageModelImpl& model, const std::vector<int64_t>& context);

// How GenerateIds keeps the Transformer's context: `context` after appending `id`.
// Returns true when the context was cut (and must be encoded again from position 0).
bool AppendToContext(std::vector<int64_t>& context, int64_t id, int64_t max_context);

struct TokenScore {
  double log_prob = 0;                          // log p(token | the tokens before it)
  std::vector<std::pair<int64_t, double>> top;  // The top_n next words (id, log-prob).
};

struct ScoredText {
  // One per token after the first (the first has nothing to be predicted from); empty
  // when ScoreIds was asked for the totals alone.
  std::vector<TokenScore> tokens;
  int64_t scored = 0;   // Tokens scored.
  double loss_sum = 0;  // -sum of log_prob.
  double perplexity() const;
};

// Scores `ids` as Trainer::Evaluate does for one stream: windows of `bptt` tokens, each
// predicting the next token, the recurrent state carried from window to window (the
// Transformer sees each window alone), so that scoring a split gives the loss the
// job's evaluation reported for it. `top_n` > 0 also lists the most likely next words at
// each position. Without `per_token`, only the totals are kept (memory: the ids alone).
// INVALID_ARGUMENT for fewer than 2 ids, bptt < 1 or top_n < 0.
absl::StatusOr<ScoredText> ScoreIds(LanguageModelImpl& model, const std::vector<int64_t>& ids, int64_t bptt,
                                    int64_t top_n = 0, bool per_token = true);

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_GENERATE_H_
