#include "worker/shard_store.h"

#include <glog/logging.h>

#include <cstdio>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/base/sharding.h"
#include "common/base/status_macros.h"

namespace ddlm {
namespace {

// Only files of this suffix are the store's: Keep leaves any other file in the
// directory alone.
constexpr char kSuffix[] = ".ddlm-shard";

bool IsSafeName(const std::string& id) {
  if (id.empty() || id.size() > 200 || id[0] == '.') return false;
  for (char c : id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

ShardStore::ShardStore(std::string dir) : dir_(std::move(dir)) {}

absl::StatusOr<std::shared_ptr<const TokenFile>> ShardStore::Get(const std::string& id, int64_t tokens,
                                                                 int64_t vocabulary_size, const Download& download) {
  if (!IsSafeName(id)) return absl::InvalidArgumentError(absl::StrCat("shard id '", id, "' is not a file name"));
  absl::MutexLock lock(&mu_);
  auto matches = [&](const TokenFile& file) {
    return file.tokens() == tokens && file.vocabulary_size() == vocabulary_size && file.width() == 4;
  };
  if (auto it = open_.find(id); it != open_.end() && matches(*it->second)) {
    ++reused_;
    return it->second;
  }
  open_.erase(id);
  const std::string path = absl::StrCat(dir_, "/", id, kSuffix);
  absl::StatusOr<std::unique_ptr<TokenFile>> held = TokenFile::Open(path);
  if (held.ok() && matches(**held)) {
    ++reused_;
    return open_[id] = std::shared_ptr<const TokenFile>(*std::move(held));
  }
  if (!held.ok() && held.status().code() != absl::StatusCode::kNotFound) {
    LOG(WARNING) << "shard " << path << " downloaded again: " << held.status();
  }
  held = absl::UnknownError("");  // Unmapped before it is replaced.
  DDLM_RETURN_IF_ERROR(MakeDirectories(dir_));
  DDLM_ASSIGN_OR_RETURN(std::unique_ptr<TokenFileWriter> writer,
                        TokenFileWriter::Create(path, vocabulary_size, /*fingerprint=*/0, /*min_width=*/4));
  std::string carry;  // A chunk may end inside an id.
  DDLM_RETURN_IF_ERROR(download([&](absl::string_view bytes) -> absl::Status {
    carry.append(bytes.data(), bytes.size());
    const size_t whole = carry.size() / 4 * 4;
    absl::StatusOr<std::vector<int64_t>> ids = DecodeTokenIds(absl::string_view(carry).substr(0, whole));
    if (!ids.ok()) return absl::DataLossError(absl::StrCat("shard ", id, ": ", ids.status().message()));
    carry.erase(0, whole);
    if (writer->tokens() + static_cast<int64_t>(ids->size()) > tokens) {
      return absl::DataLossError(absl::StrCat("shard ", id, ": more than the ", tokens, " tokens assigned came"));
    }
    absl::Status appended = writer->Append(*ids);
    if (appended.code() == absl::StatusCode::kInvalidArgument) {
      return absl::DataLossError(absl::StrCat("shard ", id, ": ", appended.message()));
    }
    return appended;
  }));
  if (!carry.empty() || writer->tokens() != tokens) {
    return absl::DataLossError(absl::StrCat("shard ", id, ": ", writer->tokens(), " tokens and ", carry.size(),
                                            " stray bytes came, not the ", tokens, " tokens assigned"));
  }
  DDLM_RETURN_IF_ERROR(writer->Finish());
  ++downloads_;
  DDLM_ASSIGN_OR_RETURN(std::unique_ptr<TokenFile> file, TokenFile::Open(path));
  return open_[id] = std::shared_ptr<const TokenFile>(std::move(file));
}

int ShardStore::downloads() const {
  absl::MutexLock lock(&mu_);
  return downloads_;
}

int ShardStore::reused() const {
  absl::MutexLock lock(&mu_);
  return reused_;
}

absl::Status ShardStore::Keep(const std::set<std::string>& keep) {
  absl::MutexLock lock(&mu_);
  for (auto it = open_.begin(); it != open_.end();) it = keep.count(it->first) > 0 ? std::next(it) : open_.erase(it);
  for (const std::string& name : ListDirectory(dir_)) {
    const bool shard = absl::EndsWith(name, kSuffix);
    if (shard && keep.count(name.substr(0, name.size() - (sizeof(kSuffix) - 1))) > 0) continue;
    if (!shard && !absl::StrContains(name, kSuffix)) continue;  // Not ours (".ddlm-shard.tmp.<pid>" is).
    if (std::remove(absl::StrCat(dir_, "/", name).c_str()) != 0) {
      return absl::InternalError(absl::StrCat("cannot remove ", dir_, "/", name));
    }
  }
  return absl::OkStatus();
}

}  // namespace ddlm
