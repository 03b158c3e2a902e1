#ifndef DDLM_COMMON_INFERENCE_TEXT_MODEL_H_
#define DDLM_COMMON_INFERENCE_TEXT_MODEL_H_

// A trained model with its vocabulary, as a checkpoint holds them, and text turned into
// its ids: what Generate, ScoreText and Attention (model_queries.h) work on, in the
// coordinator and in ddlm_generate alike.
//
// Threading: a TextModel is used from one thread at a time (its LibTorch module is not
// thread-safe); the free functions are pure.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/corpus.h"
#include "common/training/checkpoint.h"
#include "common/training/model.h"
#include "proto/config.pb.h"

namespace ddlm {

inline constexpr char kUnknownWord[] = "<unk>";

struct TextModel {
  std::shared_ptr<LanguageModelImpl> model;
  Dictionary vocabulary;
  ModelConfig config;
  // The context the model was trained on (the spec's bptt): a Transformer's window, and
  // the windows text is scored in.
  int64_t bptt = 35;
  int64_t eos = -1;  // <eos>'s id, or -1.
  int64_t unk = -1;  // <unk>'s id, or -1.
};

// Builds the checkpoint's model and restores its weights. DATA_LOSS when the vocabulary
// does not match its fingerprint; FAILED_PRECONDITION when the weights do not fit.
absl::StatusOr<TextModel> LoadTextModel(const Checkpoint& checkpoint);

struct Tokenized {
  std::vector<int64_t> ids;
  // Words outside the vocabulary, read as <unk>, once each in order of appearance.
  std::vector<std::string> unknown_words;
};

// `text` as a corpus file is read (common/base/corpus.h: whitespace-split words, an
// <eos> after every line, the last one too). `field` names the request field in errors:
// INVALID_ARGUMENT for text that is not UTF-8, holds no tokens, or holds words outside
// a vocabulary without <unk>.
absl::StatusOr<Tokenized> TokenizeText(const TextModel& model, absl::string_view text, absl::string_view field);

// A prompt: as TokenizeText, but without the <eos> a final line without a line break
// would get (generation continues the line). INVALID_ARGUMENT also when every word is
// unknown ("nothing to condition on").
absl::StatusOr<Tokenized> TokenizePrompt(const TextModel& model, absl::string_view text, absl::string_view field);

}  // namespace ddlm

#endif  // DDLM_COMMON_INFERENCE_TEXT_MODEL_H_
