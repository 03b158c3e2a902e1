#ifndef DDLM_COMMON_BASE_CORPUS_H_
#define DDLM_COMMON_BASE_CORPUS_H_

// Word-level corpora exactly as word_language_model's data.py reads them: each line is
// split on whitespace (Python's str.split(), Unicode whitespace included) and gets an
// "<eos>" token; one dictionary spans train, valid and test with ids in order of first
// appearance (train first). Not thread-safe; build once, then share read-only.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
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
  absl::flat_hash_map<std::string, int64_t> index_;  // Looked up by string_view: no copy per token.
};

// Splits `text` into lines and tokens, adding words to `dict`, and appends the ids
// to `ids`. `name` is used in error messages. INVALID_ARGUMENT if `text` is not
// UTF-8 (naming the line) or holds no tokens.
absl::Status TokenizeText(absl::string_view text, absl::string_view name, Dictionary* dict, std::vector<int64_t>* ids);

// Where a piece of text starts within its file, for error messages.
struct TextPosition {
  int64_t line = 1;  // 1-based.
  int64_t byte = 0;  // 0-based offset in the file.
};

// TokenizeText over a piece of a file that starts at `*position` and ends at a line's
// end (or the file's), passing its ids to `ids`; moves `*position` past it. Errors name
// the file's line and byte offset. Empty text is no error here (the caller checks
// that the whole file held tokens).
absl::Status TokenizeLines(absl::string_view text, absl::string_view name, TextPosition* position, Dictionary* dict,
                           std::vector<int64_t>* ids);

// Tokenizes the file at `path` as TokenizeText does, reading it in pieces of whole lines
// (ended by \n, \r\n or \r) of about `chunk_bytes` (a longer line is read whole), so
// that memory is bounded by the dictionary, the chunk and the longest line, not by the
// file. After each piece,
// `sink` gets its ids (in order) and where the next piece starts. NOT_FOUND if the file is missing, INVALID_ARGUMENT
// as TokenizeText (naming the line and byte offset within the file).
absl::Status StreamTokens(
    const std::string& path, size_t chunk_bytes, Dictionary* dict,
    const std::function<absl::Status(const std::vector<int64_t>& ids, const TextPosition& after)>& sink);

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
