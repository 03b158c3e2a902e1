#ifndef DDLM_COMMON_BASE_DATA_ROOTS_H_
#define DDLM_COMMON_BASE_DATA_ROOTS_H_

// Where a coordinator may read corpora from: the directories named by --data_root.
// A job's data.path must lie inside one of them, without `..` and without a symlink
// that leads out. Anything else is refused with one answer, PERMISSION_DENIED, whether
// or not the path exists, so that a caller cannot probe the coordinator's host for
// files. (Inside a root, a missing corpus is NOT_FOUND, as before.)
//
// Threading: immutable after Create; thread-safe.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ddlm {

class DataRoots {
 public:
  DataRoots() = default;  // No roots: every path is refused.
  // Each root must be an existing directory (INVALID_ARGUMENT naming it otherwise); it
  // is kept as its canonical path. Relative roots are taken from the working directory.
  static absl::StatusOr<DataRoots> Create(const std::vector<std::string>& roots);

  // The canonical directory `path` names (relative paths are taken from the working
  // directory), once checked to lie inside a root, together with the corpus files in it
  // (train.txt, valid.txt, test.txt, when present).
  absl::StatusOr<std::string> ResolveCorpusDir(const std::string& path) const;

  // The canonical path of the regular file `path` names, once checked as
  // ResolveCorpusDir checks a directory; `field` (the request field it came in) names it
  // in the errors: PERMISSION_DENIED outside the roots, NOT_FOUND for a missing file
  // inside one, INVALID_ARGUMENT for a directory or anything else that is no file.
  absl::StatusOr<std::string> ResolveFile(const std::string& path, absl::string_view field) const;

  const std::vector<std::string>& roots() const { return roots_; }

 private:
  explicit DataRoots(std::vector<std::string> roots) : roots_(std::move(roots)) {}

  bool Inside(const std::string& canonical) const;

  std::vector<std::string> roots_;  // Canonical, absolute.
};

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_DATA_ROOTS_H_
