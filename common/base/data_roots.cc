#include "common/base/data_roots.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ddlm {
namespace {

std::string Absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return absl::StrCat(cwd, "/", path);
}

// `path` without "." components and repeated slashes; false if it has a ".." one.
bool Normalize(const std::string& path, std::string* out) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") return false;
    parts.emplace_back(part);
  }
  *out = "/" + absl::StrJoin(parts, "/");
  return true;
}

bool Under(const std::string& path, const std::string& root) {
  return path == root || absl::StartsWith(path, root == "/" ? root : root + "/");
}

}  // namespace

absl::StatusOr<DataRoots> DataRoots::Create(const std::vector<std::string>& roots) {
  std::vector<std::string> canonical;
  for (const std::string& root : roots) {
    if (root.empty()) return absl::InvalidArgumentError("--data_root: an empty directory name");
    char resolved[PATH_MAX];
    if (::realpath(Absolute(root).c_str(), resolved) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--data_root '", root, "': ", std::strerror(errno)));
    }
    struct stat st {};
    if (::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("--data_root '", root, "' is not a directory"));
    }
    canonical.emplace_back(resolved);
  }
  return DataRoots(std::move(canonical));
}

bool DataRoots::Inside(const std::string& canonical) const {
  for (const std::string& root : roots_) {
    if (Under(canonical, root)) return true;
  }
  return false;
}

absl::StatusOr<std::string> DataRoots::ResolveCorpusDir(const std::string& path) const {
  // One answer for everything outside, told apart by nothing the filesystem says.
  const absl::Status outside = absl::PermissionDeniedError(
      absl::StrCat("data.path '", path, "' is not inside a data directory this coordinator serves (",
                   roots_.empty() ? "none: start it with --data_root" : absl::StrJoin(roots_, ", "),
                   "); paths with '..' or leading out through a symlink are refused too"));
  std::string lexical;
  if (path.empty() || !Normalize(Absolute(path), &lexical)) return outside;
  bool lexically_inside = false;
  for (const std::string& root : roots_) {
    // A root may itself lie behind a symlink: compare with its name as given, too.
    lexically_inside |= Under(lexical, root);
  }
  char resolved[PATH_MAX];
  if (::realpath(lexical.c_str(), resolved) == nullptr) {
    if (!lexically_inside) return outside;
    return absl::NotFoundError(absl::StrCat("data.path '", path, "': no such directory"));
  }
  if (!Inside(resolved)) return outside;
  const std::string dir = resolved;
  for (const char* file : {"train.txt", "valid.txt", "test.txt"}) {
    const std::string name = absl::StrCat(dir, "/", file);
    char target[PATH_MAX];
    if (::realpath(name.c_str(), target) != nullptr && !Inside(target)) return outside;
  }
  return dir;
}

absl::StatusOr<std::string> DataRoots::ResolveFile(const std::string& path, absl::string_view field) const {
  const absl::Status outside = absl::PermissionDeniedError(
      absl::StrCat(field, " '", path, "' is not inside a data directory this coordinator serves (",
                   roots_.empty() ? "none: start it with --data_root" : absl::StrJoin(roots_, ", "),
                   "); paths with '..' or leading out through a symlink are refused too"));
  std::string lexical;
  if (path.empty() || !Normalize(Absolute(path), &lexical)) return outside;
  bool lexically_inside = false;
  for (const std::string& root : roots_) lexically_inside |= Under(lexical, root);
  char resolved[PATH_MAX];
  if (::realpath(lexical.c_str(), resolved) == nullptr) {
    if (!lexically_inside) return outside;
    return absl::NotFoundError(absl::StrCat(field, " '", path, "': no such file"));
  }
  if (!Inside(resolved)) return outside;
  struct stat st;
  if (::stat(resolved, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " '", path, "' is not a regular file"));
  }
  return std::string(resolved);
}

}  // namespace ddlm
