#include "coordinator/rendezvous.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ddlm {

std::string Rendezvous::AttemptPrefix(absl::string_view job_id, int64_t attempt) {
  return absl::StrCat(job_id, "/attempt-", attempt, "/");
}

absl::Status Rendezvous::CheckLocked(const std::string& prefix, const std::string& key) const {
  if (shutdown_) return absl::UnavailableError("the coordinator is shutting down");
  if (key.empty()) return absl::InvalidArgumentError("key is empty");
  if (prefix.empty() || !absl::StartsWith(key, prefix)) {
    return absl::PermissionDeniedError(
        absl::StrCat("key '", key, "' is not this worker's attempt's (they start with '", prefix, "')"));
  }
  return absl::OkStatus();
}

absl::Status Rendezvous::Set(const std::string& prefix, const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = CheckLocked(prefix, key); !status.ok()) return status;
  if (value.size() > kMaxValueBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("value of ", value.size(), " bytes for key '", key, "': at most ", kMaxValueBytes));
  }
  auto it = values_.find(key);
  if (it != values_.end()) {
    it->second = value;
    return absl::OkStatus();
  }
  int64_t& count = keys_per_prefix_[prefix];
  if (count >= kMaxKeysPerAttempt) {
    return absl::ResourceExhaustedError(
        absl::StrCat("attempt '", prefix, "' already has ", kMaxKeysPerAttempt, " rendezvous keys"));
  }
  ++count;
  values_.emplace(key, value);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Rendezvous::Get(const std::string& prefix, const std::string& key) {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = CheckLocked(prefix, key); !status.ok()) return status;
  auto it = values_.find(key);
  if (it == values_.end()) return absl::NotFoundError(absl::StrCat("key '", key, "' is not set"));
  return it->second;
}

absl::Status Rendezvous::Wait(const std::string& prefix, const std::vector<std::string>& keys, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the coordinator is shutting down");
  if (keys.empty()) return absl::InvalidArgumentError("keys is empty");
  for (const std::string& key : keys) {
    if (absl::Status status = CheckLocked(prefix, key); !status.ok()) return status;
  }
  if (timeout < absl::ZeroDuration() || timeout > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout_ms must be in [0, 3600000], got ", absl::ToInt64Milliseconds(timeout)));
  }
  auto missing = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> const std::string* {
    for (const std::string& key : keys) {
      if (!values_.contains(key)) return &key;
    }
    return nullptr;
  };
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_ || missing() == nullptr; };
  ++waiting_;
  mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  --waiting_;
  if (shutdown_) return absl::UnavailableError("the coordinator is shutting down");
  if (const std::string* key = missing()) {
    return absl::DeadlineExceededError(
        absl::StrCat("key '", *key, "' was not set within ", absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

void Rendezvous::EndAttempt(const std::string& prefix) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(values_, [&](const auto& kv) { return absl::StartsWith(kv.first, prefix); });
  keys_per_prefix_.erase(prefix);
}

int64_t Rendezvous::KeyCount(const std::string& prefix) {
  absl::MutexLock lock(&mu_);
  auto it = keys_per_prefix_.find(prefix);
  return it == keys_per_prefix_.end() ? 0 : it->second;
}

void Rendezvous::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;  // Wakes every AwaitWithTimeout: their condition reads it.
}

void Rendezvous::AwaitWaitersForTest(int n) {
  absl::MutexLock lock(&mu_);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return waiting_ >= n; };
  mu_.Await(absl::Condition(&enough));
}

}  // namespace ddlm
