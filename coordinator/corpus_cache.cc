#include "coordinator/corpus_cache.h"

#include <sys/stat.h>

#include <utility>

#include "common/base/status_macros.h"

namespace ddlm {

CorpusCache::CorpusCache(int64_t max_bytes) : max_bytes_(max_bytes) {}

int64_t CorpusCache::BytesOf(const JobCorpus& corpus) {
  int64_t bytes =
      static_cast<int64_t>(sizeof(int64_t) * (corpus.train.size() + corpus.valid.size() + corpus.test.size()));
  // A word is held twice (the list and the index), each with a string and a node.
  for (const std::string& word : corpus.dictionary.words()) bytes += 2 * (static_cast<int64_t>(word.size()) + 64);
  return bytes;
}

bool CorpusCache::Identify(const std::string& dir, CorpusId* id) {
  static constexpr const char* kFiles[] = {"/train.txt", "/valid.txt", "/test.txt"};
  for (int i = 0; i < 3; ++i) {
    struct stat st {};
    if (::stat((dir + kFiles[i]).c_str(), &st) != 0) return false;
    FileId& f = (*id)[i];
    f.device = static_cast<uint64_t>(st.st_dev);
    f.inode = static_cast<uint64_t>(st.st_ino);
    f.size = static_cast<int64_t>(st.st_size);
    f.modified_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    f.changed_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  }
  return true;
}

absl::StatusOr<std::shared_ptr<const JobCorpus>> CorpusCache::Get(const std::string& dir) {
  CorpusId before;
  const bool identified = Identify(dir, &before);
  {
    absl::MutexLock lock(&mu_);
    for (auto it = entries_.begin(); identified && it != entries_.end(); ++it) {
      if (it->dir != dir || !(it->id == before)) continue;
      entries_.splice(entries_.begin(), entries_, it);
      ++counts_.hits;
      return entries_.front().corpus;
    }
    ++counts_.reads;
  }
  DDLM_ASSIGN_OR_RETURN(Corpus read, LoadCorpus(dir));
  auto corpus = std::make_shared<JobCorpus>();
  corpus->dictionary = std::move(read.dictionary);
  corpus->train = std::move(read.train);
  corpus->valid = std::move(read.valid);
  corpus->test = std::move(read.test);
  std::shared_ptr<const JobCorpus> result = std::move(corpus);
  // Kept only if no file changed while it was read: otherwise what was read may mix
  // the old and the new, and the next Get reads again.
  CorpusId after;
  const int64_t bytes = BytesOf(*result);
  const bool keep = identified && Identify(dir, &after) && after == before && bytes <= max_bytes_;
  absl::MutexLock lock(&mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {  // The directory's older entry is stale now.
    if (it->dir == dir) {
      counts_.bytes -= it->bytes;
      --counts_.entries;
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  if (!keep) return result;
  while (!entries_.empty() && counts_.bytes + bytes > max_bytes_) {
    counts_.bytes -= entries_.back().bytes;
    --counts_.entries;
    entries_.pop_back();
  }
  entries_.push_front(Entry{dir, before, result, bytes});
  counts_.bytes += bytes;
  ++counts_.entries;
  return result;
}

CorpusCache::Counts CorpusCache::counts() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

}  // namespace ddlm
