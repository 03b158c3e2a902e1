#include "common/inference/model_queries.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/training/generate.h"

namespace ddlm {
namespace {

absl::Status CheckTextSize(const std::string& text, absl::string_view field, const QueryLimits& limits) {
  if (static_cast<int64_t>(text.size()) > limits.max_text_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", text.size(), " bytes, over the limit of ", limits.max_text_bytes));
  }
  return absl::OkStatus();
}

void AddUnknown(const Tokenized& t, google::protobuf::RepeatedPtrField<std::string>* out) {
  for (const std::string& w : t.unknown_words) *out->Add() = w;
}

}  // namespace

std::string WordWithSeparator(const std::string& word, int64_t index) {
  return absl::StrCat(word, index % 20 == 19 ? "\n" : " ");
}

absl::Status CheckGenerateRequest(const GenerateRequest& request, const QueryLimits& limits) {
  if (request.has_words() && (request.words() < 1 || request.words() > limits.max_words)) {
    return absl::InvalidArgumentError(
        absl::StrCat("words must be in [1, ", limits.max_words, "], got ", request.words()));
  }
  if (request.has_temperature() && !(request.temperature() >= 1e-3 && request.temperature() <= 1e6)) {
    return absl::InvalidArgumentError(absl::StrCat("temperature must be in [1e-3, 1e6], got ", request.temperature()));
  }
  if (request.top_k() < 0) return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0, got ", request.top_k()));
  if (request.has_top_p() && !(request.top_p() > 0 && request.top_p() <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", request.top_p()));
  }
  if (request.has_repetition_penalty() && !(request.repetition_penalty() >= 1 && request.repetition_penalty() <= 1e6)) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition_penalty must be in [1, 1e6] (1: off), got ", request.repetition_penalty()));
  }
  return CheckTextSize(request.prompt(), "prompt", limits);
}

absl::StatusOr<GenerateResponse> RunGenerate(TextModel& model, const GenerateRequest& request,
                                             const QueryLimits& limits, const GenerateSink& sink) {
  DDLM_RETURN_IF_ERROR(CheckGenerateRequest(request, limits));
  GenerateOptions options;
  options.words = request.has_words() ? request.words() : 100;
  options.temperature = request.has_temperature() ? request.temperature() : 1.0;
  options.top_k = request.top_k();
  options.top_p = request.has_top_p() ? request.top_p() : 1.0;
  options.repetition_penalty = request.has_repetition_penalty() ? request.repetition_penalty() : 1.0;
  options.seed = request.has_seed() ? request.seed() : 1111;
  options.max_context = model.bptt;
  GenerateResponse response;
  if (!request.prompt().empty()) {
    DDLM_ASSIGN_OR_RETURN(Tokenized prompt, TokenizePrompt(model, request.prompt(), "prompt"));
    options.prompt = std::move(prompt.ids);
    AddUnknown(prompt, response.mutable_unknown_words());
  }
  if (request.stop_at_eos()) {
    if (model.eos < 0) {
      return absl::InvalidArgumentError("stop_at_eos: the model's vocabulary has no <eos>");
    }
    options.stop_id = model.eos;
  }
  bool first = true;
  int64_t made = 0;
  options.on_word = [&](int64_t id) {
    const std::string piece = WordWithSeparator(model.vocabulary.Word(id), made++);
    response.mutable_text()->append(piece);
    if (!sink) return true;
    GenerateResponse message;
    if (first) {
      message.set_checkpoint_id(response.checkpoint_id());
      *message.mutable_unknown_words() = response.unknown_words();
      first = false;
    }
    message.set_text(piece);
    if (made == options.words || id == options.stop_id) {
      message.set_words(static_cast<int32_t>(made));
      message.set_stopped_at_eos(id == options.stop_id);
    }
    return sink(message);
  };
  DDLM_ASSIGN_OR_RETURN(std::vector<int64_t> ids, GenerateIds(*model.model, options));
  response.set_words(static_cast<int32_t>(ids.size()));
  response.set_stopped_at_eos(!ids.empty() && ids.back() == options.stop_id);
  return response;
}

absl::Status CheckScoreRequest(const ScoreTextRequest& request, const QueryLimits& limits) {
  if (request.source_case() == ScoreTextRequest::SOURCE_NOT_SET) {
    return absl::InvalidArgumentError("give text or file (neither is set)");
  }
  if (request.has_text()) DDLM_RETURN_IF_ERROR(CheckTextSize(request.text(), "text", limits));
  if (request.has_file() && request.file().empty()) return absl::InvalidArgumentError("file is empty");
  if (request.top_n() < 0 || request.top_n() > limits.max_top_n) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_n must be in [0, ", limits.max_top_n, "], got ", request.top_n()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ScoreTextResponse> RunScore(TextModel& model, const ScoreTextRequest& request, const std::string& text,
                                           const QueryLimits& limits) {
  DDLM_RETURN_IF_ERROR(CheckScoreRequest(request, limits));
  const char* field = request.has_file() ? "file" : "text";
  DDLM_ASSIGN_OR_RETURN(Tokenized tokens, TokenizeText(model, text, field));
  if (tokens.ids.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(field, " holds ", tokens.ids.size(),
                                                   " token(s); scoring needs at least 2 (the first is context)"));
  }
  const bool list = request.has_tokens() ? request.tokens() : request.has_text();
  const int64_t scored_tokens = static_cast<int64_t>(tokens.ids.size()) - 1;
  if (list && scored_tokens > limits.max_listed_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(field, " has ", scored_tokens, " tokens to list, over the limit of ",
                                                   limits.max_listed_tokens,
                                                   "; set tokens: false for the totals alone"));
  }
  // What the listed reply would weigh (a word and a double per entry: about 32 bytes with
  // the proto's overhead), against what one message may carry.
  const int64_t reply_bytes = list ? scored_tokens * (1 + request.top_n()) * 32 : 0;
  if (reply_bytes > limits.max_reply_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", scored_tokens, " tokens with top_n ", request.top_n(), " make a reply of about ",
                     reply_bytes >> 20, " MiB, over ", limits.max_reply_bytes >> 20,
                     " MiB; ask for fewer words (top_n), a shorter text, or tokens: false"));
  }
  DDLM_ASSIGN_OR_RETURN(ScoredText scored,
                        ScoreIds(*model.model, tokens.ids, model.bptt, list ? request.top_n() : 0, list));
  ScoreTextResponse response;
  response.set_scored_tokens(scored_tokens);
  response.set_loss(scored.loss_sum / static_cast<double>(scored_tokens));
  response.set_perplexity(scored.perplexity());
  AddUnknown(tokens, response.mutable_unknown_words());
  if (list) {
    const Dictionary& v = model.vocabulary;
    response.set_first_word(v.Word(tokens.ids[0]));
    for (size_t i = 0; i < scored.tokens.size(); ++i) {
      ScoredToken* t = response.add_tokens();
      t->set_word(v.Word(tokens.ids[i + 1]));
      t->set_log_prob(scored.tokens[i].log_prob);
      for (const auto& [id, log_prob] : scored.tokens[i].top) {
        NextWord* w = t->add_top();
        w->set_word(v.Word(id));
        w->set_log_prob(log_prob);
        w->set_probability(std::exp(log_prob));
      }
    }
  }
  return response;
}

absl::Status CheckAttentionRequest(const AttentionRequest& request, const QueryLimits& limits) {
  DDLM_RETURN_IF_ERROR(CheckTextSize(request.text(), "text", limits));
  for (int32_t layer : request.layers()) {
    if (layer < 0) return absl::InvalidArgumentError(absl::StrCat("layers: ", layer, " is negative"));
  }
  for (int32_t head : request.heads()) {
    if (head < 0) return absl::InvalidArgumentError(absl::StrCat("heads: ", head, " is negative"));
  }
  return absl::OkStatus();
}

absl::StatusOr<AttentionResponse> RunAttention(TextModel& model, const AttentionRequest& request,
                                               const QueryLimits& limits) {
  if (model.model->is_recurrent()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "a ", ModelType_Name(model.config.type()),
        " model has no attention weights; ScoreText with top_n gives its next-word distributions instead"));
  }
  const int32_t layers = model.config.nlayers();
  const int32_t heads = model.config.nhead();
  for (int32_t layer : request.layers()) {
    if (layer < 0 || layer >= layers) {
      return absl::InvalidArgumentError(absl::StrCat("layers: the model has layers 0..", layers - 1, ", not ", layer));
    }
  }
  for (int32_t head : request.heads()) {
    if (head < 0 || head >= heads) {
      return absl::InvalidArgumentError(absl::StrCat("heads: the model has heads 0..", heads - 1, ", not ", head));
    }
  }
  DDLM_ASSIGN_OR_RETURN(Tokenized tokens, TokenizeText(model, request.text(), "text"));
  const int64_t n = static_cast<int64_t>(tokens.ids.size());
  if (n > model.bptt) {
    return absl::InvalidArgumentError(absl::StrCat("text has ", n, " tokens; the model was trained on windows of ",
                                                   model.bptt, " (its bptt), the most it reads at once"));
  }
  torch::NoGradGuard no_grad;
  DDLM_ASSIGN_OR_RETURN(std::vector<torch::Tensor> weights,
                        model.model->AttentionWeights(torch::tensor(tokens.ids, torch::kInt64).unsqueeze(1)));
  AttentionResponse response;
  for (int64_t id : tokens.ids) response.add_tokens(model.vocabulary.Word(id));
  response.set_num_layers(layers);
  response.set_num_heads(heads);
  AddUnknown(tokens, response.mutable_unknown_words());
  // Each asked once, in order (a repeated index adds nothing but size).
  auto distinct = [](const google::protobuf::RepeatedField<int32_t>& asked) {
    std::vector<int32_t> out(asked.begin(), asked.end());
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };
  std::vector<int32_t> want_layers = distinct(request.layers());
  std::vector<int32_t> want_heads = distinct(request.heads());
  if (want_layers.empty()) {
    for (int32_t l = 0; l < layers; ++l) want_layers.push_back(l);
  }
  if (want_heads.empty()) {
    for (int32_t h = 0; h < heads; ++h) want_heads.push_back(h);
  }
  const int64_t reply_bytes = static_cast<int64_t>(want_layers.size() * want_heads.size()) * n * n * 4;
  if (reply_bytes > limits.max_reply_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("layers x heads: ", want_layers.size(), " x ", want_heads.size(),
                                                   " maps of ", n, " x ", n, " weights make about ", reply_bytes >> 20,
                                                   " MiB, over ", limits.max_reply_bytes >> 20,
                                                   " MiB; ask for fewer layers or heads, or a shorter text"));
  }
  for (int32_t l : want_layers) {
    for (int32_t h : want_heads) {
      torch::Tensor w = weights[static_cast<size_t>(l)][h].to(torch::kFloat).contiguous();
      AttentionMap* map = response.add_maps();
      map->set_layer(l);
      map->set_head(h);
      map->mutable_weights()->Add(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
    }
  }
  return response;
}

}  // namespace ddlm
