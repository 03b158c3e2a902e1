#include "common/base/corpus.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"

namespace ddlm {
namespace {

// Decodes one UTF-8 code point at text[*pos], advancing *pos. Returns -1 for an
// invalid sequence (overlong forms, surrogates and values past U+10FFFF included).
int32_t DecodeUtf8(absl::string_view text, size_t* pos) {
  const unsigned char c0 = static_cast<unsigned char>(text[*pos]);
  if (c0 < 0x80) {
    ++*pos;
    return c0;
  }
  int len;
  int32_t cp;
  int32_t min;
  if ((c0 & 0xE0) == 0xC0) {
    len = 2, cp = c0 & 0x1F, min = 0x80;
  } else if ((c0 & 0xF0) == 0xE0) {
    len = 3, cp = c0 & 0x0F, min = 0x800;
  } else if ((c0 & 0xF8) == 0xF0) {
    len = 4, cp = c0 & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  if (*pos + len > text.size()) return -1;
  for (int i = 1; i < len; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[*pos + i]);
    if ((c & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (c & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  *pos += len;
  return cp;
}

// Python's str.isspace() (str.split() with no separator splits on these).
bool IsPythonSpace(int32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x1C:
    case 0x1D:
    case 0x1E:
    case 0x1F:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
  }
}

}  // namespace

int64_t Dictionary::Add(absl::string_view word) {
  auto it = index_.find(word);
  if (it != index_.end()) return it->second;
  int64_t id = static_cast<int64_t>(words_.size());
  words_.emplace_back(word);
  index_.emplace(words_.back(), id);
  return id;
}

int64_t Dictionary::Find(absl::string_view word) const {
  auto it = index_.find(word);
  return it == index_.end() ? -1 : it->second;
}

uint64_t Dictionary::Fingerprint() const {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;
  };
  for (const std::string& w : words_) {
    for (char c : w) mix(static_cast<unsigned char>(c));
    mix(0);  // Separator: {"ab","c"} and {"a","bc"} differ.
  }
  return h;
}

Dictionary Dictionary::FromWords(const std::vector<std::string>& words) {
  Dictionary d;
  for (const std::string& w : words) d.Add(w);
  return d;
}

absl::Status TokenizeText(absl::string_view text, absl::string_view name, Dictionary* dict, std::vector<int64_t>* ids) {
  const size_t before = ids->size();
  TextPosition position;
  DDLM_RETURN_IF_ERROR(TokenizeLines(text, name, &position, dict, ids));
  if (ids->size() == before) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is empty: it holds no tokens"));
  }
  return absl::OkStatus();
}

absl::Status TokenizeLines(absl::string_view text, absl::string_view name, TextPosition* position, Dictionary* dict,
                           std::vector<int64_t>* ids) {
  // Python's text-mode iteration ends lines at \n, \r\n or \r; a final line without
  // a newline still counts, an empty file has no lines.
  size_t pos = 0;
  int64_t line = position->line;
  size_t word_start = std::string::npos;
  bool line_open = false;
  while (pos < text.size()) {
    const size_t at = pos;
    const int32_t cp = DecodeUtf8(text, &pos);
    if (cp < 0) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is not valid UTF-8: bad byte 0x",
                                                     absl::Hex(static_cast<unsigned char>(text[at])), " at line ", line,
                                                     ", byte offset ", position->byte + static_cast<int64_t>(at)));
    }
    line_open = true;
    const bool newline = cp == '\n' || cp == '\r';
    if (IsPythonSpace(cp)) {
      if (word_start != std::string::npos) {
        ids->push_back(dict->Add(text.substr(word_start, at - word_start)));
        word_start = std::string::npos;
      }
    } else if (word_start == std::string::npos) {
      word_start = at;
    }
    if (newline) {
      if (cp == '\r' && pos < text.size() && text[pos] == '\n') ++pos;
      ids->push_back(dict->Add(kEndOfSentence));  // After the line's words, as upstream.
      ++line;
      line_open = false;
    }
  }
  if (word_start != std::string::npos) ids->push_back(dict->Add(text.substr(word_start)));
  if (line_open) {
    ids->push_back(dict->Add(kEndOfSentence));
    ++line;
  }
  position->line = line;
  position->byte += static_cast<int64_t>(text.size());
  return absl::OkStatus();
}

absl::Status StreamTokens(
    const std::string& path, size_t chunk_bytes, Dictionary* dict,
    const std::function<absl::Status(const std::vector<int64_t>& ids, const TextPosition& after)>& sink) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int error = errno;
    const std::string what = absl::StrCat(path, ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(what) : absl::PermissionDeniedError(what);
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(file, &std::fclose);
  chunk_bytes = std::max<size_t>(chunk_bytes, 1);
  std::string buffer;
  std::vector<int64_t> ids;
  TextPosition position;
  int64_t tokens = 0;
  bool end = false;
  while (!end) {
    // Read until the buffer holds a chunk's worth and a line's end, or the file ends.
    size_t cut = std::string::npos;
    size_t scanned = 0;  // Bytes before this were looked at for a line's end.
    while (!end && (buffer.size() < chunk_bytes || cut == std::string::npos)) {
      const size_t old = buffer.size();
      buffer.resize(old + chunk_bytes);
      const size_t got = std::fread(&buffer[old], 1, chunk_bytes, file);
      buffer.resize(old + got);
      if (got < chunk_bytes) {
        if (std::ferror(file)) return absl::DataLossError(absl::StrCat(path, ": read failed: ", std::strerror(errno)));
        end = true;
      }
      // The last line end among the new bytes: after a \n, or after a \r whose next byte
      // is here and is not \n (a \r\n never splits). Only new bytes are looked at, so a
      // long line costs its length, not its square.
      for (size_t i = buffer.size(); i > scanned; --i) {
        const char c = buffer[i - 1];
        if (c == '\n' || (c == '\r' && i < buffer.size() && buffer[i] != '\n')) {
          cut = i;
          break;
        }
      }
      // A \r at the end is looked at again once its next byte is read.
      scanned = buffer.empty() ? 0 : buffer.size() - 1;
    }
    // A piece of whole lines, or all that is left at the end.
    const size_t take = end ? buffer.size() : cut;
    ids.clear();
    DDLM_RETURN_IF_ERROR(TokenizeLines(absl::string_view(buffer).substr(0, take), path, &position, dict, &ids));
    tokens += static_cast<int64_t>(ids.size());
    if (!ids.empty()) DDLM_RETURN_IF_ERROR(sink(ids, position));
    buffer.erase(0, take);
  }
  if (tokens == 0) return absl::InvalidArgumentError(absl::StrCat(path, " is empty: it holds no tokens"));
  return absl::OkStatus();
}

absl::StatusOr<Corpus> LoadCorpus(const std::string& dir) {
  Corpus corpus;
  struct Split {
    const char* file;
    std::vector<int64_t>* ids;
  };
  for (const Split& split :
       {Split{"train.txt", &corpus.train}, Split{"valid.txt", &corpus.valid}, Split{"test.txt", &corpus.test}}) {
    const std::string path = absl::StrCat(dir, "/", split.file);
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) {
      return absl::Status(text.status().code(),
                          absl::StrCat("corpus file ", text.status().message(),
                                       " (a corpus directory holds train.txt, valid.txt and test.txt)"));
    }
    DDLM_RETURN_IF_ERROR(TokenizeText(*text, path, &corpus.dictionary, split.ids));
  }
  return corpus;
}

}  // namespace ddlm
