#include "coordinator/worker_credentials.h"

#include "absl/strings/str_cat.h"

namespace ddlm {
namespace {

absl::Status Denied(const std::string& worker_id) {
  return absl::PermissionDeniedError(absl::StrCat("worker id '", worker_id, "' is registered with another credential"));
}

}  // namespace

absl::StatusOr<bool> WorkerCredentials::Bind(const std::string& worker_id, const std::string& credential) {
  absl::MutexLock lock(&mu_);
  auto [it, added] = bound_.emplace(worker_id, credential);
  if (!added && it->second != credential) return Denied(worker_id);
  return added;
}

absl::Status WorkerCredentials::Check(const std::string& worker_id, const std::string& credential) const {
  absl::MutexLock lock(&mu_);
  auto it = bound_.find(worker_id);
  if (it != bound_.end() && it->second != credential) return Denied(worker_id);
  return absl::OkStatus();
}

void WorkerCredentials::Forget(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  bound_.erase(worker_id);
}

int WorkerCredentials::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(bound_.size());
}

}  // namespace ddlm
