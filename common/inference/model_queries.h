#ifndef DDLM_COMMON_INFERENCE_MODEL_QUERIES_H_
#define DDLM_COMMON_INFERENCE_MODEL_QUERIES_H_

// JobService's model queries (Generate, GenerateStream, ScoreText, Attention) on a
// loaded model, apart from any transport: the coordinator answers RPCs with them, and
// ddlm_generate answers its flags with them, so that both give the same words, scores
// and weights for the same request (and crop a Transformer's context the same way).
//
// Each query has a Check* that validates what needs no model (run before a
// checkpoint is looked up or read) and a Run* that does the rest. Errors are
// INVALID_ARGUMENT naming the request field.
//
// Threading: free functions; the TextModel is used from the caller's thread.

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "common/inference/text_model.h"
#include "proto/job_service.pb.h"

namespace ddlm {

struct QueryLimits {
  int64_t max_words = 10000;          // GenerateRequest.words
  int64_t max_text_bytes = 1 << 20;   // prompt, ScoreTextRequest.text, AttentionRequest.text
  int64_t max_file_bytes = 64 << 20;  // ScoreTextRequest.file
  // A reply's estimated size (the server sends at most 64 MiB in one message).
  int64_t max_reply_bytes = 48 << 20;
  int64_t max_listed_tokens = 100000;  // ScoreTextResponse.tokens
  int32_t max_top_n = 100;             // ScoreTextRequest.top_n
};

absl::Status CheckGenerateRequest(const GenerateRequest& request, const QueryLimits& limits);
// Each piece of text as it is made (see GenerateStream); returning false stops.
using GenerateSink = std::function<bool(const GenerateResponse& piece)>;
// Generates as the request says. With `sink`, every word is also sent as it comes (the
// first piece with unknown_words, the last with words and stopped_at_eos).
absl::StatusOr<GenerateResponse> RunGenerate(TextModel& model, const GenerateRequest& request,
                                             const QueryLimits& limits, const GenerateSink& sink = nullptr);

absl::Status CheckScoreRequest(const ScoreTextRequest& request, const QueryLimits& limits);
// Scores `text` (the request's text, or the file's contents the caller read).
absl::StatusOr<ScoreTextResponse> RunScore(TextModel& model, const ScoreTextRequest& request, const std::string& text,
                                           const QueryLimits& limits);

absl::Status CheckAttentionRequest(const AttentionRequest& request, const QueryLimits& limits);
absl::StatusOr<AttentionResponse> RunAttention(TextModel& model, const AttentionRequest& request,
                                               const QueryLimits& limits);

// Words joined as generate.py writes them: a newline after every 20th word, else a space.
// `index` is the word's 0-based position in the output.
std::string WordWithSeparator(const std::string& word, int64_t index);

}  // namespace ddlm

#endif  // DDLM_COMMON_INFERENCE_MODEL_QUERIES_H_
