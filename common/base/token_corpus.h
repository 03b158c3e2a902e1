#ifndef DDLM_COMMON_BASE_TOKEN_CORPUS_H_
#define DDLM_COMMON_BASE_TOKEN_CORPUS_H_

// A corpus directory (train.txt, valid.txt, test.txt) tokenized to disk in two streaming
// passes, so that memory is bounded by the vocabulary and a fixed buffer whatever the
// corpus's size: the first pass builds the dictionary (ids in order of first
// appearance, train first, exactly as LoadCorpus and word_language_model's data.py),
// the second writes each split as a token file (token_file.h). The output directory
// holds:
//   vocab.txt                          "DDLMVOC1 <words> <crc32 of the rest, hex>\n",
//                                      then one word per line, by id
//   train.tok, valid.tok, test.tok     token files
// Every file is written atomically; vocab.txt last, so a directory with it is whole.
//
// Threading: free functions; no shared state.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/corpus.h"
#include "common/base/token_file.h"

namespace ddlm {

struct TokenizeOptions {
  size_t chunk_bytes = 4 << 20;  // Text read at a time (whole lines; see StreamTokens).
  // Called after each chunk: text bytes read so far over both passes, and tokens
  // written so far (0 during the first pass).
  std::function<void(int64_t bytes_read, int64_t tokens_written)> progress;
  // Asked after each chunk: true stops the build, CANCELLED (nothing is left in place).
  std::function<bool()> stop;
};

struct TokenCorpusSummary {
  int64_t vocabulary_size = 0;
  int64_t train = 0, valid = 0, test = 0;  // Tokens.
  int64_t text_bytes = 0;                  // Of the three text files (read twice).
};

// Tokenizes `corpus_dir` into `out_dir` (made if missing). Errors as LoadCorpus's,
// naming the file (and line, for bad UTF-8).
absl::StatusOr<TokenCorpusSummary> BuildTokenCorpus(const std::string& corpus_dir, const std::string& out_dir,
                                                    const TokenizeOptions& options = {});

// What BuildTokenCorpus wrote, opened: DATA_LOSS naming the file if any is damaged or
// they do not belong together (another vocabulary), NOT_FOUND if one is missing.
struct TokenCorpus {
  Dictionary dictionary;
  std::unique_ptr<TokenFile> train, valid, test;
};
absl::StatusOr<TokenCorpus> OpenTokenCorpus(const std::string& dir);

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_TOKEN_CORPUS_H_
