#ifndef DDLM_COMMON_BASE_FILE_IO_H_
#define DDLM_COMMON_BASE_FILE_IO_H_

// Whole-file reads and crash-safe writes. Thread-compatible: free functions with no
// shared state.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ddlm {

// Reads the whole file. NOT_FOUND if it does not exist, PERMISSION_DENIED or
// INTERNAL for other failures; the message names the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// The first `max_bytes` bytes of the file (all of it when shorter), never more, however
// large the file is or grows while it is read. Errors as ReadFile.
absl::StatusOr<std::string> ReadFilePrefix(const std::string& path, int64_t max_bytes);

// Writes `contents` to `path` so that a reader sees either the old file or the
// whole new one, never a torn mix, even across a crash: the bytes go to a
// temporary file in the same directory, which is fsync'ed, renamed over `path`,
// and the directory is fsync'ed.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// The second half of an atomic write of a file written through `fd` as `tmp`: fsyncs
// and closes `fd`, renames `tmp` over `path` and fsyncs the directory. On failure `tmp`
// is removed and the error names the path.
absl::Status CommitFile(int fd, const std::string& tmp, const std::string& path);

// Removes `path` and everything under it (symlinks are removed, never followed); OK if
// it does not exist. (Not std::filesystem::remove_all: the CUDA LibTorch wheel exports
// its own copy of it, which crashes when called from our code.)
absl::Status RemoveTree(const std::string& path);

// Creates directory `dir` and any missing parents (0755); OK if it already exists. The
// error names the directory that could not be made.
absl::Status MakeDirectories(const std::string& dir);

// The names in directory `path` (not "." and ".."), sorted; empty if it cannot be read.
std::vector<std::string> ListDirectory(const std::string& path);

// Writes all of `data` to `fd` (retrying short writes and EINTR); an error names `path`.
absl::Status WriteAll(int fd, absl::string_view data, const std::string& path);

// CRC-32 (zlib's polynomial) of `data`, continuing from `crc` (0 to start).
uint32_t Crc32(absl::string_view data, uint32_t crc = 0);

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_FILE_IO_H_
