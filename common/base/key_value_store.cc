#include "common/base/key_value_store.h"

#include "absl/strings/str_cat.h"

namespace ddlm {

absl::Status InMemoryKeyValueStore::Set(const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  values_[key] = value;
  return absl::OkStatus();
}

absl::StatusOr<std::string> InMemoryKeyValueStore::Get(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = values_.find(key);
  if (it == values_.end()) return absl::NotFoundError(absl::StrCat("key '", key, "' is not set"));
  return it->second;
}

absl::Status InMemoryKeyValueStore::Wait(const std::vector<std::string>& keys, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto all_set = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const std::string& k : keys) {
      if (!values_.contains(k)) return false;
    }
    return true;
  };
  const absl::Condition condition(&all_set);
  if (mu_.AwaitWithTimeout(condition, timeout)) return absl::OkStatus();
  for (const std::string& k : keys) {
    if (!values_.contains(k)) {
      return absl::DeadlineExceededError(
          absl::StrCat("key '", k, "' was not set within ", absl::FormatDuration(timeout)));
    }
  }
  return absl::OkStatus();
}

absl::Status PrefixStore::Set(const std::string& key, const std::string& value) {
  return base_->Set(prefix_ + key, value);
}

absl::StatusOr<std::string> PrefixStore::Get(const std::string& key) { return base_->Get(prefix_ + key); }

absl::Status PrefixStore::Wait(const std::vector<std::string>& keys, absl::Duration timeout) {
  std::vector<std::string> prefixed;
  prefixed.reserve(keys.size());
  for (const std::string& key : keys) prefixed.push_back(prefix_ + key);
  return base_->Wait(prefixed, timeout);
}

}  // namespace ddlm
