#ifndef DDLM_COORDINATOR_RENDEZVOUS_H_
#define DDLM_COORDINATOR_RENDEZVOUS_H_

// The coordinator's rendezvous store: the keys the ranks of one job attempt exchange to
// find each other (Gloo's addresses, NCCL's unique id, the device kinds), served to
// workers through WorkerService.Key{Set,Get,Wait}. Each attempt's keys live under its
// own prefix (AttemptPrefix, the Assignment's store_prefix), with limits on value size
// and key count so that one attempt cannot exhaust the coordinator, and are dropped when
// the attempt ends. Shutdown wakes every waiter.
//
// Which attempt a worker runs, and so which prefix it may use, is the coordinator's
// (worker registry) business; callers resolve it first and pass it in.
//
// Threading: thread-safe, behind its own mutex, which is a leaf: nothing is called with
// it held. Waits block only here, never under the coordinator's lock (the coordinator
// releases it before calling Set/Get/Wait; EndAttempt may be called under it).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ddlm {

class Rendezvous {
 public:
  static constexpr size_t kMaxValueBytes = 64 << 10;
  static constexpr int64_t kMaxKeysPerAttempt = 4096;

  // "<job_id>/attempt-<n>/": every key of that attempt starts with it.
  static std::string AttemptPrefix(absl::string_view job_id, int64_t attempt);

  // Each of these checks that every key starts with `prefix` (PERMISSION_DENIED naming
  // the key otherwise; INVALID_ARGUMENT for an empty key), and answers UNAVAILABLE after
  // Shutdown.
  // RESOURCE_EXHAUSTED for a value over kMaxValueBytes, or a new key past
  // kMaxKeysPerAttempt under `prefix` (overwriting an existing key is allowed).
  absl::Status Set(const std::string& prefix, const std::string& key, const std::string& value)
      ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND if the key is not set.
  absl::StatusOr<std::string> Get(const std::string& prefix, const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  // Returns once every key is set; DEADLINE_EXCEEDED naming a missing key after
  // `timeout`; UNAVAILABLE if Shutdown comes first. INVALID_ARGUMENT for no keys, or a
  // timeout outside [0, 1 h] (a forgotten waiter must not hold a server thread forever).
  absl::Status Wait(const std::string& prefix, const std::vector<std::string>& keys, absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Drops every key under `prefix` (the attempt ended).
  void EndAttempt(const std::string& prefix) ABSL_LOCKS_EXCLUDED(mu_);
  // Keys set under `prefix`.
  int64_t KeyCount(const std::string& prefix) ABSL_LOCKS_EXCLUDED(mu_);
  // Wakes every waiter (UNAVAILABLE); every later call answers UNAVAILABLE at once.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until `n` callers are blocked in Wait (for tests that wake them).
  void AwaitWaitersForTest(int n) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status CheckLocked(const std::string& prefix, const std::string& key) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> values_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int64_t> keys_per_prefix_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;  // Callers blocked in Wait.
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_RENDEZVOUS_H_
