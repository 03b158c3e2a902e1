#include "common/inference/render.h"

#include <google/protobuf/util/json_util.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ddlm {

std::string ScoreTable(const ScoreTextResponse& response) {
  std::string out;
  if (response.tokens_size() > 0) {
    absl::StrAppendFormat(&out, "%6s  %-20s %10s", "pos", "word", "log-prob");
    if (response.tokens(0).top_size() > 0) absl::StrAppend(&out, "   expected (probability)");
    absl::StrAppend(&out, "\n");
    absl::StrAppendFormat(&out, "%6d  %-20s %10s\n", 0, response.first_word(), "(context)");
    for (int i = 0; i < response.tokens_size(); ++i) {
      const ScoredToken& t = response.tokens(i);
      absl::StrAppendFormat(&out, "%6d  %-20s %10.4f", i + 1, t.word(), t.log_prob());
      for (int k = 0; k < t.top_size(); ++k) {
        absl::StrAppendFormat(&out, "%s%s (%.3f)", k == 0 ? "   " : ", ", t.top(k).word(), t.top(k).probability());
      }
      absl::StrAppend(&out, "\n");
    }
  }
  if (response.unknown_words_size() > 0) {
    absl::StrAppend(&out, "read as <unk>:");
    for (const std::string& w : response.unknown_words()) absl::StrAppend(&out, " ", w);
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppendFormat(&out, "perplexity %.4f over %d tokens (loss %.6f) with checkpoint %s\n", response.perplexity(),
                        response.scored_tokens(), response.loss(), response.checkpoint_id());
  return out;
}

std::string AsJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

absl::StatusOr<Heatmap> AttentionHeatmap(const AttentionResponse& response, int layer, int head) {
  for (const AttentionMap& map : response.maps()) {
    if (map.layer() != layer || map.head() != head) continue;
    Heatmap h;
    h.title = absl::StrCat("attention, layer ", layer, ", head ", head, ": row = query, column = key");
    h.x_labels.assign(response.tokens().begin(), response.tokens().end());
    h.y_labels = h.x_labels;
    h.values.assign(map.weights().begin(), map.weights().end());
    h.value_label = "attention weight";
    return h;
  }
  return absl::NotFoundError(absl::StrCat("the answer holds no map for layer ", layer, " head ", head));
}

absl::StatusOr<Heatmap> LogProbHeatmap(const ScoreTextResponse& response) {
  if (response.tokens_size() == 0 || response.tokens(0).top_size() == 0) {
    return absl::FailedPreconditionError("the scores list no next words (ask with top_n > 0 and tokens)");
  }
  const int ranks = response.tokens(0).top_size();
  const int positions = response.tokens_size();
  Heatmap h;
  h.title = absl::StrCat("log-probabilities of the ", ranks, " most likely next words (checkpoint ",
                         response.checkpoint_id(), ")");
  // Column i: after reading the word at position i, what the model expects next.
  h.x_labels.push_back(response.first_word());
  for (int i = 0; i + 1 < positions; ++i) h.x_labels.push_back(response.tokens(i).word());
  for (int r = 0; r < ranks; ++r) h.y_labels.push_back(absl::StrCat("#", r + 1));
  h.values.resize(static_cast<size_t>(ranks) * positions);
  h.cell_labels.resize(h.values.size());
  for (int i = 0; i < positions; ++i) {
    const ScoredToken& t = response.tokens(i);
    for (int r = 0; r < ranks; ++r) {
      const size_t cell = static_cast<size_t>(r) * positions + i;
      if (r < t.top_size()) {
        h.values[cell] = t.top(r).log_prob();
        // The word that came is marked.
        h.cell_labels[cell] = t.top(r).word() == t.word() ? absl::StrCat("*", t.top(r).word()) : t.top(r).word();
      } else {
        h.values[cell] = std::numeric_limits<double>::quiet_NaN();
      }
    }
  }
  h.value_label = "log-probability (* the word that came)";
  return h;
}

}  // namespace ddlm
