#include "common/inference/text_model.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"

namespace ddlm {

absl::StatusOr<TextModel> LoadTextModel(const Checkpoint& checkpoint) {
  const CheckpointHeader& h = checkpoint.header;
  TextModel m;
  m.vocabulary = Dictionary::FromWords(std::vector<std::string>(h.vocabulary().begin(), h.vocabulary().end()));
  if (m.vocabulary.Fingerprint() != h.vocabulary_fingerprint()) {
    return absl::DataLossError("the checkpoint's vocabulary does not match its fingerprint");
  }
  m.config = h.spec().model();
  DDLM_ASSIGN_OR_RETURN(m.model, BuildModel(m.config, m.vocabulary.size()));
  DDLM_RETURN_IF_ERROR(RestoreModel(checkpoint, *m.model));
  m.model->eval();
  // The context it was trained on (the spec's bptt, 35 by default).
  m.bptt = h.spec().data().has_bptt() && h.spec().data().bptt() > 0 ? h.spec().data().bptt() : 35;
  m.eos = m.vocabulary.Find(kEndOfSentence);
  m.unk = m.vocabulary.Find(kUnknownWord);
  return m;
}

absl::StatusOr<Tokenized> TokenizeText(const TextModel& model, absl::string_view text, absl::string_view field) {
  // The corpus reader's own rules, on a copy of the vocabulary: a word it adds is one
  // the model does not know.
  Dictionary words = model.vocabulary;
  const int64_t known = words.size();
  std::vector<int64_t> ids;
  DDLM_RETURN_IF_ERROR(::ddlm::TokenizeText(text, field, &words, &ids));
  Tokenized out;
  absl::flat_hash_set<int64_t> listed;
  for (int64_t& id : ids) {
    if (id < known) continue;
    if (listed.insert(id).second) out.unknown_words.push_back(words.Word(id));
    id = model.unk;
  }
  if (!out.unknown_words.empty() && model.unk < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " has words outside the model's vocabulary, which has no ",
                                                   kUnknownWord,
                                                   " to read them as: ", absl::StrJoin(out.unknown_words, ", ")));
  }
  out.ids = std::move(ids);
  return out;
}

absl::StatusOr<Tokenized> TokenizePrompt(const TextModel& model, absl::string_view text, absl::string_view field) {
  DDLM_ASSIGN_OR_RETURN(Tokenized out, TokenizeText(model, text, field));
  const bool ends_line = !text.empty() && (text.back() == '\n' || text.back() == '\r');
  if (!ends_line && !out.ids.empty() && out.ids.back() == model.eos) out.ids.pop_back();
  bool any_known = false;
  for (int64_t id : out.ids) any_known |= id != model.unk && id != model.eos;
  if (!any_known) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " holds no word of the model's vocabulary", out.unknown_words.empty() ? "" : " (unknown: ",
                     absl::StrJoin(out.unknown_words, ", "), out.unknown_words.empty() ? "" : ")"));
  }
  return out;
}

}  // namespace ddlm
