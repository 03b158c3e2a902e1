#include "common/base/token_cache.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"

namespace ddlm {
namespace {

constexpr char kFormat[] = "ddlm-token-cache-1";  // Changes with the files' format or the tokenizer.

uint64_t Fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open directory '", dir, "': ", std::strerror(errno)));
  const int synced = ::fsync(fd);
  ::close(fd);
  if (synced != 0) return absl::InternalError(absl::StrCat("cannot fsync '", dir, "': ", std::strerror(errno)));
  return absl::OkStatus();
}

}  // namespace

TokenCache::TokenCache(std::string root) : root_(std::move(root)) {}

absl::StatusOr<std::string> TokenCache::KeyOf(const std::string& dir) {
  char real[PATH_MAX];
  if (::realpath(dir.c_str(), real) == nullptr) {
    return absl::NotFoundError(absl::StrCat("corpus directory '", dir, "': ", std::strerror(errno),
                                            " (a corpus directory holds train.txt, valid.txt and test.txt)"));
  }
  std::string identity = absl::StrCat(kFormat, "\n", real, "\n");
  for (const char* file : {"train.txt", "valid.txt", "test.txt"}) {
    const std::string path = absl::StrCat(real, "/", file);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      return absl::NotFoundError(absl::StrCat("corpus file '", path, "': ", std::strerror(errno),
                                              " (a corpus directory holds train.txt, valid.txt and test.txt)"));
    }
    absl::StrAppend(&identity, file, " ", st.st_dev, " ", st.st_ino, " ", st.st_size, " ", st.st_mtim.tv_sec, ".",
                    st.st_mtim.tv_nsec, " ", st.st_ctim.tv_sec, ".", st.st_ctim.tv_nsec, "\n");
  }
  return absl::StrCat(absl::Hex(Fnv1a(identity), absl::kZeroPad16));
}

absl::StatusOr<TokenCache::Entry> TokenCache::Get(const std::string& dir, const TokenizeOptions& options) {
  DDLM_ASSIGN_OR_RETURN(std::string key, KeyOf(dir));
  Entry entry;
  entry.key = key;
  entry.path = absl::StrCat(root_, "/", key);
  std::string temporary;
  {
    absl::MutexLock lock(&mu_);
    // One Get at a time per key: a second waits for the first's entry.
    auto idle = [this, &key]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return busy_.count(key) == 0; };
    mu_.Await(absl::Condition(&idle));
    if (auto it = open_.find(key); it != open_.end()) {
      ++counts_.hits;
      entry.corpus = it->second;
      return entry;
    }
    busy_.insert(key);
    temporary = absl::StrCat(root_, "/", key, ".tmp.", ::getpid(), ".", next_temporary_++);
  }
  // Opened or built without the lock: other keys' Gets go on meanwhile.
  absl::StatusOr<std::shared_ptr<const TokenCorpus>> made =
      OpenOrBuild(dir, entry.path, temporary, key, options, &entry.built);
  absl::MutexLock lock(&mu_);
  busy_.erase(key);
  if (!made.ok()) return made.status();
  entry.corpus = *std::move(made);
  open_[key] = entry.corpus;
  ++(entry.built ? counts_.builds : counts_.opens);
  return entry;
}

absl::StatusOr<std::shared_ptr<const TokenCorpus>> TokenCache::OpenOrBuild(
    const std::string& dir, const std::string& path, const std::string& temporary, const std::string& key,
    const TokenizeOptions& options, bool* built) {
  *built = false;
  if (struct stat st{}; ::stat(path.c_str(), &st) == 0) {
    absl::StatusOr<TokenCorpus> opened = OpenTokenCorpus(path);
    if (opened.ok()) return std::make_shared<const TokenCorpus>(*std::move(opened));
    // Only a damaged or incomplete entry is replaced; another failure (out of memory or
    // file descriptors, permissions) is the caller's, and the entry stays.
    if (opened.status().code() != absl::StatusCode::kDataLoss &&
        opened.status().code() != absl::StatusCode::kNotFound) {
      return opened.status();
    }
    // Damaged (or half-removed by hand): built again from the text.
    LOG(WARNING) << "token cache: rebuilding " << path << " for " << dir << ": " << opened.status();
    DDLM_RETURN_IF_ERROR(RemoveTree(path));
  }
  DDLM_RETURN_IF_ERROR(MakeDirectories(root_));
  DDLM_RETURN_IF_ERROR(RemoveTree(temporary));
  absl::Status status = BuildTokenCorpus(dir, temporary, options).status();
  if (status.ok()) {
    absl::StatusOr<std::string> after = KeyOf(dir);
    if (!after.ok() || *after != key) {
      status = absl::FailedPreconditionError(
          absl::StrCat("corpus directory '", dir, "' changed while it was tokenized; submit the job again"));
    }
  }
  if (status.ok() && ::rename(temporary.c_str(), path.c_str()) != 0) {
    status =
        absl::InternalError(absl::StrCat("cannot rename '", temporary, "' to '", path, "': ", std::strerror(errno)));
  }
  if (!status.ok()) {
    (void)RemoveTree(temporary);
    return status;
  }
  DDLM_RETURN_IF_ERROR(SyncDirectory(root_));
  DDLM_ASSIGN_OR_RETURN(TokenCorpus opened, OpenTokenCorpus(path));
  *built = true;
  return std::make_shared<const TokenCorpus>(std::move(opened));
}

TokenCache::Counts TokenCache::counts() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

absl::StatusOr<int> TokenCache::Collect(const std::set<std::string>& keep) {
  absl::MutexLock lock(&mu_);
  int removed = 0;
  for (const std::string& name : ListDirectory(root_)) {
    const size_t tmp = name.find(".tmp.");
    const bool temporary = tmp != std::string::npos;
    if (!temporary && keep.count(name) > 0) continue;
    if (busy_.count(temporary ? name.substr(0, tmp) : name) > 0) continue;  // Being opened or built now.
    open_.erase(name);
    DDLM_RETURN_IF_ERROR(RemoveTree(absl::StrCat(root_, "/", name)));
    if (!temporary) ++removed;
  }
  if (removed > 0) DDLM_RETURN_IF_ERROR(SyncDirectory(root_));
  return removed;
}

}  // namespace ddlm
