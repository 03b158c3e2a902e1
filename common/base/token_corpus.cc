#include "common/base/token_corpus.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"

namespace ddlm {
namespace {

constexpr const char* kSplits[] = {"train", "valid", "test"};
constexpr char kVocabularyMagic[] = "DDLMVOC1";

// StreamTokens' errors, worded as LoadCorpus's for a missing file.
absl::Status Explain(absl::Status status) {
  if (status.code() != absl::StatusCode::kNotFound) return status;
  return absl::NotFoundError(
      absl::StrCat("corpus file ", status.message(), " (a corpus directory holds train.txt, valid.txt and test.txt)"));
}

// CANCELLED once options.stop says so.
absl::Status Stopped(const TokenizeOptions& options) {
  if (options.stop && options.stop()) return absl::CancelledError("tokenizing stopped (shutting down)");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TokenCorpusSummary> BuildTokenCorpus(const std::string& corpus_dir, const std::string& out_dir,
                                                    const TokenizeOptions& options) {
  DDLM_RETURN_IF_ERROR(MakeDirectories(out_dir));
  TokenCorpusSummary summary;
  int64_t read = 0;
  int64_t written = 0;
  Dictionary dictionary;
  // Pass one: the dictionary.
  for (const char* split : kSplits) {
    const std::string path = absl::StrCat(corpus_dir, "/", split, ".txt");
    int64_t bytes = 0;
    DDLM_RETURN_IF_ERROR(Explain(StreamTokens(path, options.chunk_bytes, &dictionary,
                                              [&](const std::vector<int64_t>&, const TextPosition& after) {
                                                bytes = after.byte;
                                                if (options.progress) options.progress(read + bytes, written);
                                                return Stopped(options);
                                              })));
    read += bytes;
    summary.text_bytes += bytes;
  }
  summary.vocabulary_size = dictionary.size();
  const uint64_t fingerprint = dictionary.Fingerprint();
  // Pass two: the ids. The dictionary is complete: Add finds every word.
  for (const char* split : kSplits) {
    const std::string path = absl::StrCat(corpus_dir, "/", split, ".txt");
    DDLM_ASSIGN_OR_RETURN(
        std::unique_ptr<TokenFileWriter> writer,
        TokenFileWriter::Create(absl::StrCat(out_dir, "/", split, ".tok"), dictionary.size(), fingerprint));
    const int64_t words_before = dictionary.size();
    int64_t bytes = 0;
    DDLM_RETURN_IF_ERROR(Explain(StreamTokens(path, options.chunk_bytes, &dictionary,
                                              [&](const std::vector<int64_t>& ids, const TextPosition& after) {
                                                DDLM_RETURN_IF_ERROR(writer->Append(ids));
                                                written += static_cast<int64_t>(ids.size());
                                                bytes = after.byte;
                                                if (options.progress) options.progress(read + bytes, written);
                                                return Stopped(options);
                                              })));
    if (dictionary.size() != words_before) {
      return absl::FailedPreconditionError(absl::StrCat(path, " changed while it was tokenized"));
    }
    DDLM_RETURN_IF_ERROR(writer->Finish());
    (split == kSplits[0] ? summary.train : split == kSplits[1] ? summary.valid : summary.test) = writer->tokens();
    read += bytes;
  }
  std::string words;
  for (const std::string& word : dictionary.words()) absl::StrAppend(&words, word, "\n");
  DDLM_RETURN_IF_ERROR(WriteFileAtomically(
      absl::StrCat(out_dir, "/vocab.txt"),
      absl::StrCat(kVocabularyMagic, " ", dictionary.size(), " ", absl::Hex(Crc32(words)), "\n", words)));
  return summary;
}

absl::StatusOr<TokenCorpus> OpenTokenCorpus(const std::string& dir) {
  const std::string vocabulary_path = absl::StrCat(dir, "/vocab.txt");
  DDLM_ASSIGN_OR_RETURN(std::string text, ReadFile(vocabulary_path));
  auto damaged = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("vocabulary file '", vocabulary_path, "' is damaged: ", what));
  };
  const size_t eol = text.find('\n');
  if (eol == std::string::npos) return damaged("no header line");
  std::vector<std::string> header = absl::StrSplit(text.substr(0, eol), ' ');
  int64_t count = 0;
  uint32_t crc = 0;
  if (header.size() != 3 || header[0] != kVocabularyMagic || !absl::SimpleAtoi(header[1], &count) ||
      !absl::SimpleHexAtoi(header[2], &crc)) {
    return damaged("its header is not \"DDLMVOC1 <words> <crc32>\"");
  }
  const absl::string_view words(text.data() + eol + 1, text.size() - eol - 1);
  if (Crc32(words) != crc) return damaged("its checksum does not match");
  TokenCorpus corpus;
  for (absl::string_view word : absl::StrSplit(words, '\n', absl::SkipEmpty())) corpus.dictionary.Add(word);
  if (corpus.dictionary.size() != count) {
    return damaged(absl::StrCat("its header says ", count, " words, it holds ", corpus.dictionary.size()));
  }
  std::unique_ptr<TokenFile>* files[] = {&corpus.train, &corpus.valid, &corpus.test};
  for (int i = 0; i < 3; ++i) {
    const std::string path = absl::StrCat(dir, "/", kSplits[i], ".tok");
    DDLM_ASSIGN_OR_RETURN(*files[i], TokenFile::Open(path));
    if ((*files[i])->vocabulary_size() != count || (*files[i])->fingerprint() != corpus.dictionary.Fingerprint()) {
      return absl::DataLossError(
          absl::StrCat("token file '", path, "' was made with another vocabulary than '", vocabulary_path, "'"));
    }
  }
  return corpus;
}

}  // namespace ddlm
