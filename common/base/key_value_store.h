#ifndef DDLM_COMMON_BASE_KEY_VALUE_STORE_H_
#define DDLM_COMMON_BASE_KEY_VALUE_STORE_H_

// The rendezvous store the collective backends use to find each other (Gloo's
// transport addresses, NCCL's unique id), modelled on c10d's Store: set, get, and
// wait for keys with a timeout. The coordinator serves one over gRPC
// (worker/coordinator_client.h); tests use InMemoryKeyValueStore.
//
// Threading: implementations are thread-safe.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ddlm {

class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;
  // Sets `key` (overwriting any value).
  virtual absl::Status Set(const std::string& key, const std::string& value) = 0;
  // NOT_FOUND if `key` was never set.
  virtual absl::StatusOr<std::string> Get(const std::string& key) = 0;
  // Returns once every key is set; DEADLINE_EXCEEDED naming a missing key after
  // `timeout`.
  virtual absl::Status Wait(const std::vector<std::string>& keys, absl::Duration timeout) = 0;
};

// A process-local store, for tests that run ranks as threads (the coordinator's own
// table, with per-attempt limits, is coordinator/rendezvous.h).
class InMemoryKeyValueStore : public KeyValueStore {
 public:
  absl::Status Set(const std::string& key, const std::string& value) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::string> Get(const std::string& key) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Wait(const std::vector<std::string>& keys, absl::Duration timeout) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> values_ ABSL_GUARDED_BY(mu_);
};

// Another store's keys under a prefix, as c10d's PrefixStore: Set("k") sets
// "<prefix>k" in `base`. How a job attempt's ranks, and the parts of one rank (Gloo's
// mesh, NCCL's id, the device check), keep their keys apart. Prefixes nest.
//
// Threading: as thread-safe as `base`.
class PrefixStore : public KeyValueStore {
 public:
  // `base` (not owned) outlives this.
  PrefixStore(std::string prefix, KeyValueStore* base) : prefix_(std::move(prefix)), base_(base) {}

  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::string> Get(const std::string& key) override;
  absl::Status Wait(const std::vector<std::string>& keys, absl::Duration timeout) override;

  const std::string& prefix() const { return prefix_; }

 private:
  const std::string prefix_;
  KeyValueStore* const base_;
};

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_KEY_VALUE_STORE_H_
