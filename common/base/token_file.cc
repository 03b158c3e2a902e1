#include "common/base/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"

namespace ddlm {
namespace {

constexpr char kMagic[8] = {'D', 'D', 'L', 'M', 'T', 'O', 'K', '1'};
constexpr size_t kBufferBytes = 1 << 20;

void PutLe(uint64_t value, int bytes, unsigned char* out) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<unsigned char>(value >> (8 * i));
}

uint64_t GetLe(const unsigned char* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(in[i]) << (8 * i);
  return value;
}

// The largest of `n` little-endian ids of `width` bytes at `p` (a loop the compiler
// vectorizes: verifying a file runs at memory speed).
uint64_t MaxId(const unsigned char* p, int64_t n, int width) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "token files hold little-endian ids");
  uint32_t largest = 0;
  if (width == 2) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t id;
      std::memcpy(&id, p + 2 * i, 2);
      largest = std::max<uint32_t>(largest, id);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      uint32_t id;
      std::memcpy(&id, p + 4 * i, 4);
      largest = std::max(largest, id);
    }
  }
  return largest;
}

absl::string_view Bytes(const unsigned char* p, size_t n) {
  return absl::string_view(reinterpret_cast<const char*>(p), n);
}

}  // namespace

int TokenWidth(int64_t vocabulary_size) { return vocabulary_size <= (int64_t{1} << 16) ? 2 : 4; }

absl::StatusOr<std::unique_ptr<TokenFileWriter>> TokenFileWriter::Create(const std::string& path,
                                                                         int64_t vocabulary_size, uint64_t fingerprint,
                                                                         int min_width) {
  if (min_width != 2 && min_width != 4) {
    return absl::InvalidArgumentError(absl::StrCat("a token file's id width is 2 or 4 bytes, got ", min_width));
  }
  if (vocabulary_size < 1 || vocabulary_size > (int64_t{1} << 32)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a token file's vocabulary must have 1 to 2^32 words, got ", vocabulary_size));
  }
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::Status(errno == ENOSPC ? absl::StatusCode::kResourceExhausted : absl::StatusCode::kInternal,
                        absl::StrCat("cannot create '", tmp, "': ", std::strerror(errno)));
  }
  std::unique_ptr<TokenFileWriter> writer(new TokenFileWriter(path, std::move(tmp), fd, vocabulary_size, fingerprint,
                                                              std::max(min_width, TokenWidth(vocabulary_size))));
  // The header's place, filled in by Finish.
  writer->buffer_.assign(kTokenFileHeaderBytes, '\0');
  return writer;
}

TokenFileWriter::TokenFileWriter(std::string path, std::string tmp, int fd, int64_t vocabulary_size,
                                 uint64_t fingerprint, int width)
    : path_(std::move(path)),
      tmp_(std::move(tmp)),
      fd_(fd),
      vocabulary_size_(vocabulary_size),
      fingerprint_(fingerprint),
      width_(width) {}

TokenFileWriter::~TokenFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) ::unlink(tmp_.c_str());
}

absl::Status TokenFileWriter::Append(const std::vector<int64_t>& ids) {
  if (finished_ || fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, ": already finished"));
  if (!failed_.ok()) return failed_;
  const size_t start = buffer_.size();
  buffer_.resize(start + ids.size() * static_cast<size_t>(width_));
  unsigned char* out = reinterpret_cast<unsigned char*>(&buffer_[start]);
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= vocabulary_size_) {
      buffer_.resize(start);
      return absl::InvalidArgumentError(absl::StrCat(path_, ": token id ", id, " (token ",
                                                     tokens_ + static_cast<int64_t>(i),
                                                     ") is outside the vocabulary of ", vocabulary_size_, " words"));
    }
    PutLe(static_cast<uint64_t>(id), width_, out + i * static_cast<size_t>(width_));
  }
  crc_ = Crc32(absl::string_view(buffer_).substr(start), crc_);  // Only the ids (not the header's place).
  tokens_ += static_cast<int64_t>(ids.size());
  if (buffer_.size() >= kBufferBytes) return Flush();
  return absl::OkStatus();
}

absl::Status TokenFileWriter::Flush() {
  if (failed_.ok()) failed_ = WriteAll(fd_, buffer_, tmp_);  // Once a write failed, the file is lost.
  buffer_.clear();
  return failed_;
}

absl::Status TokenFileWriter::Finish() {
  if (finished_ || fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, ": already finished"));
  DDLM_RETURN_IF_ERROR(Flush());
  unsigned char header[kTokenFileHeaderBytes] = {};
  std::memcpy(header, kMagic, sizeof(kMagic));
  PutLe(static_cast<uint64_t>(width_), 4, header + 8);
  PutLe(static_cast<uint64_t>(tokens_), 8, header + 16);
  PutLe(static_cast<uint64_t>(vocabulary_size_), 8, header + 24);
  PutLe(fingerprint_, 8, header + 32);
  PutLe(crc_, 4, header + 40);
  PutLe(Crc32(Bytes(header, 60)), 4, header + 60);
  if (::pwrite(fd_, header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header))) {
    return absl::InternalError(absl::StrCat("cannot write the header of '", tmp_, "': ", std::strerror(errno)));
  }
  const int fd = fd_;
  fd_ = -1;
  DDLM_RETURN_IF_ERROR(CommitFile(fd, tmp_, path_));  // Closes fd; removes tmp_ on failure.
  finished_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TokenFile>> TokenFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string message = absl::StrCat("cannot open token file '", path, "': ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat("token file '", path, "' is not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  auto damaged = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("token file '", path, "' is damaged: ", what));
  };
  if (size < static_cast<size_t>(kTokenFileHeaderBytes)) {
    ::close(fd);
    return damaged(absl::StrCat("it has ", size, " bytes, less than its header's 64"));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);  // The mapping keeps the file.
  if (map == MAP_FAILED) {
    return absl::InternalError(absl::StrCat("cannot map token file '", path, "': ", std::strerror(errno)));
  }
  std::unique_ptr<TokenFile> file(new TokenFile());
  file->map_ = map;
  file->map_bytes_ = size;
  const unsigned char* header = static_cast<const unsigned char*>(map);
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0) return damaged("it does not start with DDLMTOK1");
  if (GetLe(header + 60, 4) != Crc32(Bytes(header, 60))) return damaged("its header's checksum does not match");
  file->width_ = static_cast<int>(GetLe(header + 8, 4));
  file->tokens_ = static_cast<int64_t>(GetLe(header + 16, 8));
  file->vocabulary_size_ = static_cast<int64_t>(GetLe(header + 24, 8));
  file->fingerprint_ = GetLe(header + 32, 8);
  if (file->width_ != 2 && file->width_ != 4) return damaged(absl::StrCat("id width ", file->width_));
  if (file->vocabulary_size_ < 1 || file->width_ < TokenWidth(file->vocabulary_size_)) {
    return damaged(absl::StrCat("id width ", file->width_, " for ", file->vocabulary_size_, " words"));
  }
  const uint64_t payload = size - kTokenFileHeaderBytes;
  if (file->tokens_ < 0 || static_cast<uint64_t>(file->tokens_) > payload / static_cast<uint64_t>(file->width_) ||
      payload != static_cast<uint64_t>(file->tokens_) * static_cast<uint64_t>(file->width_)) {
    return damaged(absl::StrCat("its header says ", file->tokens_, " ids of ", file->width_, " bytes, but ", payload,
                                " bytes follow it"));
  }
  file->ids_ = header + kTokenFileHeaderBytes;
  // A few MiB at a time, each let go once checked: resident memory stays bounded.
  constexpr int64_t kVerifyIds = int64_t{1} << 21;
  uint32_t crc = 0;
  int64_t outside = -1;  // The first id outside the vocabulary (reported after the checksum).
  for (int64_t begin = 0; begin < file->tokens_; begin += kVerifyIds) {
    const int64_t end = std::min(file->tokens_, begin + kVerifyIds);
    const size_t width = static_cast<size_t>(file->width_);
    const unsigned char* piece = file->ids_ + static_cast<size_t>(begin) * width;
    crc = Crc32(Bytes(piece, static_cast<size_t>(end - begin) * width), crc);
    // Readers index embeddings with them: the piece's largest id, then (rarely) which.
    if (outside < 0 && MaxId(piece, end - begin, file->width_) >= static_cast<uint64_t>(file->vocabulary_size_)) {
      for (int64_t i = begin; i < end && outside < 0; ++i) {
        if ((*file)[i] >= file->vocabulary_size_) outside = i;
      }
    }
    file->ReleasePages();
  }
  if (GetLe(header + 40, 4) != crc) return damaged("its ids' checksum does not match");
  if (outside >= 0) return damaged(absl::StrCat("id ", outside, " is outside the vocabulary"));
  return file;
}

void TokenFile::ReleasePages() const { ::madvise(map_, map_bytes_, MADV_DONTNEED); }

TokenFile::~TokenFile() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

int64_t TokenFile::operator[](int64_t i) const {
  return static_cast<int64_t>(GetLe(ids_ + static_cast<size_t>(i) * static_cast<size_t>(width_), width_));
}

void TokenFile::CopyIds(int64_t begin, int64_t end, std::vector<int64_t>* out) const {
  out->reserve(out->size() + static_cast<size_t>(end - begin));
  for (int64_t i = begin; i < end; ++i) out->push_back((*this)[i]);
}

std::string TokenFile::EncodeInt32(int64_t begin, int64_t end) const {
  std::string bytes(static_cast<size_t>(end - begin) * 4, '\0');
  unsigned char* out = reinterpret_cast<unsigned char*>(&bytes[0]);
  const unsigned char* in = ids_ + static_cast<size_t>(begin) * static_cast<size_t>(width_);
  if (width_ == 4) {  // The file's bytes are the wire's (little-endian int32).
    std::memcpy(out, in, bytes.size());
    return bytes;
  }
  for (int64_t i = 0; i < end - begin; ++i) {
    uint16_t id;
    std::memcpy(&id, in + 2 * i, 2);
    const uint32_t wide = id;
    std::memcpy(out + 4 * i, &wide, 4);
  }
  return bytes;
}

}  // namespace ddlm
