#ifndef DDLM_COMMON_BASE_TOKEN_FILE_H_
#define DDLM_COMMON_BASE_TOKEN_FILE_H_

// A corpus split as token ids on disk, so that a corpus larger than memory is tokenized
// once and then read (or memory-mapped) in pieces. The format, little-endian:
//
//   bytes  0-7   "DDLMTOK1"
//          8-11  uint32  width of an id: 2 (uint16) when the vocabulary has at most
//                        65,536 words (or 4, if the writer asked for it), 4 (uint32)
//                        otherwise
//         12-15  uint32  0
//         16-23  uint64  tokens
//         24-31  uint64  vocabulary size (every id is below it)
//         32-39  uint64  the dictionary's fingerprint (Dictionary::Fingerprint)
//         40-43  uint32  CRC-32 of the ids' bytes
//         44-59          0
//         60-63  uint32  CRC-32 of bytes 0-59
//   bytes 64-    the ids, `width` bytes each
//
// A file is written whole or not at all (a temporary file, fsync, rename, the
// directory's fsync); a file that does not match its header or checksums is refused
// with DATA_LOSS naming it.
//
// Threading: a TokenFileWriter is not thread-safe; a TokenFile is immutable once open
// and may be read from any thread.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ddlm {

inline constexpr int64_t kTokenFileHeaderBytes = 64;

// The id width a vocabulary of `vocabulary_size` words needs: 2 or 4.
int TokenWidth(int64_t vocabulary_size);

class TokenFileWriter {
 public:
  // Starts `path` (written in place only by Finish). INVALID_ARGUMENT for a vocabulary
  // size outside [1, 2^32]. `min_width` 4 writes 4-byte ids whatever the vocabulary
  // (a worker's shard, mapped as int32: worker/shard_store.h).
  static absl::StatusOr<std::unique_ptr<TokenFileWriter>> Create(const std::string& path, int64_t vocabulary_size,
                                                                 uint64_t fingerprint, int min_width = 2);
  // Removes the temporary file if Finish was not reached.
  ~TokenFileWriter();
  TokenFileWriter(const TokenFileWriter&) = delete;
  TokenFileWriter& operator=(const TokenFileWriter&) = delete;

  // INVALID_ARGUMENT for an id outside [0, vocabulary size), naming it.
  absl::Status Append(const std::vector<int64_t>& ids);
  // Writes the header and puts the file in place.
  absl::Status Finish();
  int64_t tokens() const { return tokens_; }

 private:
  TokenFileWriter(std::string path, std::string tmp, int fd, int64_t vocabulary_size, uint64_t fingerprint, int width);
  absl::Status Flush();

  const std::string path_, tmp_;
  int fd_;
  const int64_t vocabulary_size_;
  const uint64_t fingerprint_;
  const int width_;
  int64_t tokens_ = 0;
  uint32_t crc_ = 0;
  std::string buffer_;
  absl::Status failed_;  // The first failed write: every later call returns it.
  bool finished_ = false;
};

class TokenFile {
 public:
  // Maps `path` and checks its header and both checksums (reading every byte once, a
  // few MiB at a time: the pages read are let go as it goes, so that opening a file
  // larger than memory does not make it resident). NOT_FOUND for a missing file,
  // DATA_LOSS naming the file and what is wrong.
  static absl::StatusOr<std::unique_ptr<TokenFile>> Open(const std::string& path);
  ~TokenFile();
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;

  int64_t tokens() const { return tokens_; }
  int width() const { return width_; }
  int64_t vocabulary_size() const { return vocabulary_size_; }
  uint64_t fingerprint() const { return fingerprint_; }
  int64_t operator[](int64_t i) const;
  // Ids [begin, end) appended to `out`; begin <= end <= tokens().
  void CopyIds(int64_t begin, int64_t end, std::vector<int64_t>* out) const;
  // Ids [begin, end) as int32 little-endian bytes, as sharding.h's EncodeTokenIds makes
  // a shard.
  std::string EncodeInt32(int64_t begin, int64_t end) const;
  // The ids' bytes as they are in the file (width() bytes each, little-endian).
  const void* raw_ids() const { return ids_; }
  // Lets go of the mapping's resident pages (they stay in the page cache, and are
  // mapped again when read): a reader that walks a large file calls it now and then so
  // that its resident memory stays bounded. Safe while others read the file.
  void ReleasePages() const;

 private:
  TokenFile() = default;

  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const unsigned char* ids_ = nullptr;
  int64_t tokens_ = 0;
  int width_ = 0;
  int64_t vocabulary_size_ = 0;
  uint64_t fingerprint_ = 0;
};

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_TOKEN_FILE_H_
