#ifndef DDLM_COMMON_BASE_CORPUS_H_
#define DDLM_COMMON_BASE_CORPUS_H_

// Word-level corpora exactly as word_language_model's data.py reads them: each line is
// split on whitespace (Python's str.split(), Unicode whitespace included) and gets an
// "<eos>" token; one dictionary spans train, valid and test with ids in order of first
// appearance (train first). Not thread-safe; build once, then share read-only.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ddlm {

inline constexpr char kEndOfSentence[] = "<eos>";

class Dictionary {
 public:
  // Returns the id of `word`, adding it if new.
  int64_t Add(absl::string_view word);
  // Returns the id of `word` or -1.
  int64_t Find(absl::string_view word) const;
  const std::string& Word(int64_t id) const { return words_[static_cast<size_t>(id)]; }
  const std::vector<std::string>& words() const { return words_; }
  int64_t size() const { return static_cast<int64_t>(words_.size()); }

  // A stable 64-bit fingerprint (FNV-1a) of the ordered word list. Checkpoints
  // record it so that a model is never loaded against another vocabulary.
  uint64_t Fingerprint() const;

  static Dictionary FromWords(const std::vector<std::string>& words);

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int64_t> index_;
};

// Splits `text` into lines and tokens, adding words to `dict`, and appends the ids
// to `ids`. `name` is used in error messages. INVALID_ARGUMENT if `text` is not
// UTF-8 (naming the line) or holds no tokens.
absl::Status TokenizeText(absl::string_view text, absl::string_view name, Dictionary* dict, std::vector<int64_t>* ids);

struct Corpus {
  Dictionary dictionary;
  std::vector<int64_t> train;
  std::vector<int64_t> valid;
  std::vector<int64_t> test;
};

// Reads <dir>/train.txt, valid.txt and test.txt. Errors name the file: NOT_FOUND if
// missing, INVALID_ARGUMENT if empty or not UTF-8.
absl::StatusOr<Corpus> LoadCorpus(const std::string& dir);

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_CORPUS_H_
