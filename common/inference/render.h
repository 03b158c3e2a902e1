#ifndef DDLM_COMMON_INFERENCE_RENDER_H_
#define DDLM_COMMON_INFERENCE_RENDER_H_

// What `ddlm score|attention|logprobs` and ddlm_generate print and draw from the
// model queries' answers (model_queries.h): a score table, JSON, and heatmaps.
//
// Threading: free functions.

#include <string>

#include "absl/status/statusor.h"
#include "common/plots/heatmap_plot.h"
#include "proto/job_service.pb.h"

namespace ddlm {

// One line per scored token (position, word, log-prob, and the top words when listed),
// then the totals: "perplexity P over N tokens (loss L)".
std::string ScoreTable(const ScoreTextResponse& response);

// The message as JSON (protobuf's mapping, field names as in the .proto).
std::string AsJson(const google::protobuf::Message& message);

// Layer `layer`, head `head` of `response` as a heatmap: queries down, keys across, the
// tokens on both axes. NOT_FOUND when the response holds no such map.
absl::StatusOr<Heatmap> AttentionHeatmap(const AttentionResponse& response, int layer, int head);

// The log-probability map: one column per position (labelled with the word read there),
// one row per rank 1..top_n, each cell the log-probability of the rank's word, which is
// written in it. FAILED_PRECONDITION without listed tokens and their top words.
absl::StatusOr<Heatmap> LogProbHeatmap(const ScoreTextResponse& response);

}  // namespace ddlm

#endif  // DDLM_COMMON_INFERENCE_RENDER_H_
