#ifndef DDLM_WORKER_SHARD_STORE_H_
#define DDLM_WORKER_SHARD_STORE_H_

// A worker's shards on its own disk, so that its memory does not grow with its shard:
// each is downloaded once, a chunk at a time, into <dir>/<shard id>.ddlm-shard (a token file
// of 4-byte ids with its checksums, common/base/token_file.h), then memory-mapped;
// batches are cut from the mapping (worker/job_runner.h lets its pages go as training
// walks it). A shard already there under the same name (the same tokens: the
// coordinator's ShardId names the corpus, the split and the range) and whole is used
// again without a download: after a restart of the attempt or of the worker.
//
// A store kept by the worker process (ddlm_worker keeps one for all its attempts) also
// keeps what it opened: a shard used again by the next attempt is not even read again.
//
// Threading: thread-safe; one store per directory.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/base/token_file.h"

namespace ddlm {

class ShardStore {
 public:
  explicit ShardStore(std::string dir);

  // Calls `sink` with the shard's bytes (int32 little-endian ids) as they come, and
  // returns OK only if they all came whole (CoordinatorClient::DownloadShard).
  using Download = std::function<absl::Status(const std::function<absl::Status(absl::string_view)>& sink)>;

  // The shard named `id`: `tokens` ids, each below `vocabulary_size`. From the disk if
  // a whole file of that name and size is there, else through `download`.
  // INVALID_ARGUMENT for a name outside [A-Za-z0-9._-] (or empty, or starting with
  // '.'); DATA_LOSS naming the shard if the download is not `tokens` ids or holds an id
  // outside the vocabulary; the download's own error otherwise.
  absl::StatusOr<std::shared_ptr<const TokenFile>> Get(const std::string& id, int64_t tokens, int64_t vocabulary_size,
                                                       const Download& download) ABSL_LOCKS_EXCLUDED(mu_);

  // Removes every shard (and any partial download) whose name is not in `keep`; files
  // not named as shards (<id>.ddlm-shard) are left alone.
  absl::Status Keep(const std::set<std::string>& keep) ABSL_LOCKS_EXCLUDED(mu_);

  int downloads() const ABSL_LOCKS_EXCLUDED(mu_);
  int reused() const ABSL_LOCKS_EXCLUDED(mu_);  // From the disk or from what this store had open.
  const std::string& dir() const { return dir_; }

 private:
  const std::string dir_;
  mutable absl::Mutex mu_;  // Held for a whole Get or Keep: one attempt at a time.
  std::map<std::string, std::shared_ptr<const TokenFile>> open_ ABSL_GUARDED_BY(mu_);
  int downloads_ ABSL_GUARDED_BY(mu_) = 0;
  int reused_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ddlm

#endif  // DDLM_WORKER_SHARD_STORE_H_
