#ifndef DDLM_COMMON_BASE_TOKEN_CACHE_H_
#define DDLM_COMMON_BASE_TOKEN_CACHE_H_

// Corpora tokenized to disk once (common/base/token_corpus.h) and kept for every later
// use: in the coordinator's state directory (<state_dir>/corpora, for every later job,
// attempt and coordinator) and ddlm_train's --token_cache. <root>/<key>/ holds a corpus's
// vocab.txt and token files. The key names the corpus's files as they are now: the
// directory's real path and, for each of train.txt, valid.txt and test.txt, its device,
// inode, size and modification and change times; a file replaced, rewritten or touched
// gets another key (the old entry stays until Collect). An entry is built in a
// temporary directory and renamed into place whole; one found damaged (DATA_LOSS) is
// built again. Memory while building is bounded by the vocabulary (two streaming
// passes), whatever the corpus's size. An entry is checked (read whole) once per
// TokenCache: later Gets of the same key share what the first opened.
//
// Threading: thread-safe. Gets of different corpora open or build at once, without
// the lock; a Get of a corpus being built waits for it; Collect leaves it alone.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/base/token_corpus.h"

namespace ddlm {

class TokenCache {
 public:
  explicit TokenCache(std::string root);

  // The key of the corpus in `dir` as its files are now. NOT_FOUND naming a missing file.
  static absl::StatusOr<std::string> KeyOf(const std::string& dir);

  struct Entry {
    std::string key;
    std::string path;  // <root>/<key>
    std::shared_ptr<const TokenCorpus> corpus;
    bool built = false;  // By this call (a miss, or a damaged entry replaced).
  };
  // The corpus in `dir`, tokenized: from its entry if there is a whole one, else built
  // (BuildTokenCorpus's errors, which name the file; FAILED_PRECONDITION if a file
  // changed while it was read). `options.progress` reports a build's progress.
  absl::StatusOr<Entry> Get(const std::string& dir, const TokenizeOptions& options = {}) ABSL_LOCKS_EXCLUDED(mu_);

  struct Counts {
    int64_t builds = 0;  // Gets that tokenized the text (a miss, or a damaged entry).
    int64_t opens = 0;   // Gets that opened (and checked) an entry found on disk.
    int64_t hits = 0;    // Gets answered with an entry this cache had open.
  };
  Counts counts() const ABSL_LOCKS_EXCLUDED(mu_);

  // Removes every entry (and any temporary directory) whose key is not in `keep`;
  // returns how many entries went. Shards already handed out stay readable (their
  // files are mapped).
  absl::StatusOr<int> Collect(const std::set<std::string>& keep) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // The entry at `path`, opened (and checked), else built from `dir` via `temporary`.
  absl::StatusOr<std::shared_ptr<const TokenCorpus>> OpenOrBuild(const std::string& dir, const std::string& path,
                                                                 const std::string& temporary, const std::string& key,
                                                                 const TokenizeOptions& options, bool* built);

  const std::string root_;
  mutable absl::Mutex mu_;
  std::set<std::string> busy_ ABSL_GUARDED_BY(mu_);  // Keys a Get is opening or building.
  Counts counts_ ABSL_GUARDED_BY(mu_);
  uint64_t next_temporary_ ABSL_GUARDED_BY(mu_) = 0;
  // Entries opened (and checked) by this cache, by key.
  std::map<std::string, std::shared_ptr<const TokenCorpus>> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_TOKEN_CACHE_H_
