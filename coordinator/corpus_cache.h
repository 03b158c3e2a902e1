#ifndef DDLM_COORDINATOR_CORPUS_CACHE_H_
#define DDLM_COORDINATOR_CORPUS_CACHE_H_

// Tokenized corpora kept between the reads of a job's corpus: its submission checks the
// splits' sizes, its start cuts the shards, and each restart or resume cuts them again.
// Each reads the files only if they changed: an entry is keyed by the directory and,
// for each of train.txt, valid.txt and test.txt, the file's device, inode, size and
// modification and change times (as stat(2) gives them, to the nanosecond), taken
// before and after the read; a file replaced, rewritten or touched is read again (but
// not one rewritten in place, at the same size, within the file system's timestamp
// tick of the read: replace corpus files rather than edit them). The
// entries weigh at most `max_bytes` (their token ids and words); the least recently
// used go first, and a corpus heavier than that is never kept.
//
// Threading: thread-safe. Reads run without the lock; two that miss on the same
// directory at once both read it.

#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/base/corpus.h"

namespace ddlm {

// A job's corpus, tokenized (common/base/corpus.h); immutable once made, and shared.
struct JobCorpus {
  Dictionary dictionary;
  std::vector<int64_t> train, valid, test;
};

class CorpusCache {
 public:
  explicit CorpusCache(int64_t max_bytes);

  // The corpus in `dir` (LoadCorpus's errors, which name the file).
  absl::StatusOr<std::shared_ptr<const JobCorpus>> Get(const std::string& dir) ABSL_LOCKS_EXCLUDED(mu_);

  struct Counts {
    int64_t hits = 0;     // Gets answered without reading.
    int64_t reads = 0;    // Gets that read the files (whether or not they succeeded).
    int64_t entries = 0;  // Corpora kept now...
    int64_t bytes = 0;    // ...and what they weigh.
  };
  Counts counts() const ABSL_LOCKS_EXCLUDED(mu_);

  // What `corpus` weighs here: 8 bytes per token id, and each word with its overhead.
  static int64_t BytesOf(const JobCorpus& corpus);

 private:
  struct FileId {
    uint64_t device = 0, inode = 0;
    int64_t size = 0, modified_ns = 0, changed_ns = 0;
    bool operator==(const FileId& o) const {
      return device == o.device && inode == o.inode && size == o.size && modified_ns == o.modified_ns &&
             changed_ns == o.changed_ns;
    }
  };
  using CorpusId = std::array<FileId, 3>;  // train, valid, test.
  struct Entry {
    std::string dir;
    CorpusId id;
    std::shared_ptr<const JobCorpus> corpus;
    int64_t bytes = 0;
  };
  // False if a file cannot be stat'ed (the read then names it).
  static bool Identify(const std::string& dir, CorpusId* id);

  const int64_t max_bytes_;
  mutable absl::Mutex mu_;
  std::list<Entry> entries_ ABSL_GUARDED_BY(mu_);  // Most recently used first.
  Counts counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_CORPUS_CACHE_H_
