#include "coordinator/corpus_cache.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

// Sets a file's modification time to `seconds` past the epoch (its change time moves too).
void SetModified(const std::string& path, int64_t seconds) {
  struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// A corpus whose files were modified at a fixed time long ago, so that any write after
// it changes the modification time, however coarse the file system's clock.
std::string CorpusDir(const std::string& name, const std::string& train = "a b c\nd e\n") {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  EXPECT_TRUE(MakeDirectories(dir).ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/train.txt", train).ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/valid.txt", "a b\n").ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/test.txt", "c d\n").ok());
  for (const char* file : {"/train.txt", "/valid.txt", "/test.txt"}) SetModified(dir + file, 1000000000);
  return dir;
}

TEST(CorpusCacheTest, UnchangedFilesAreReadOnce) {
  CorpusCache cache(int64_t{1} << 30);
  const std::string dir = CorpusDir("once");
  auto first = cache.Get(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = cache.Get(dir);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->get(), second->get());  // The same corpus, not a copy.
  EXPECT_EQ((*first)->train.size(), 7u);   // 5 words and 2 <eos>.
  CorpusCache::Counts counts = cache.counts();
  EXPECT_EQ(counts.reads, 1);
  EXPECT_EQ(counts.hits, 1);
  EXPECT_EQ(counts.entries, 1);
  EXPECT_EQ(counts.bytes, CorpusCache::BytesOf(**first));
}

TEST(CorpusCacheTest, AFileRewrittenReplacedOrTouchedIsReadAgain) {
  CorpusCache cache(int64_t{1} << 30);
  const std::string dir = CorpusDir("changed");
  auto original = cache.Get(dir);
  ASSERT_TRUE(original.ok()) << original.status();

  // Rewritten in place, same size, other words.
  {
    std::FILE* f = std::fopen((dir + "/train.txt").c_str(), "r+");
    ASSERT_NE(f, nullptr);
    std::fputs("x y z\nd e\n", f);
    std::fclose(f);
  }
  auto rewritten = cache.Get(dir);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status();
  EXPECT_EQ((*rewritten)->dictionary.Word(0), "x");
  EXPECT_EQ(cache.counts().reads, 2);

  // Replaced by another file (a new inode).
  CorpusDir("changed", "p q\nr s\n");
  auto replaced = cache.Get(dir);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ((*replaced)->dictionary.Word(0), "p");
  EXPECT_EQ(cache.counts().reads, 3);

  // Touched: same bytes, another time.
  SetModified(dir + "/test.txt", 1500000000);
  auto touched = cache.Get(dir);
  ASSERT_TRUE(touched.ok()) << touched.status();
  EXPECT_NE(touched->get(), replaced->get());
  EXPECT_EQ(cache.counts().reads, 4);
  EXPECT_EQ(cache.counts().hits, 0);
  EXPECT_EQ(cache.counts().entries, 1);  // One entry per directory.

  // The old corpora stay whole for whoever still holds them.
  EXPECT_EQ((*original)->dictionary.Word(0), "a");
}

TEST(CorpusCacheTest, TheLeastRecentlyUsedGoFirstAndAnOverweightCorpusIsNeverKept) {
  const std::string a = CorpusDir("lru-a");
  const std::string b = CorpusDir("lru-b");
  const std::string big = CorpusDir("lru-big", std::string(2000, 'w') + " v\n");
  int64_t one = 0;
  {
    CorpusCache probe(int64_t{1} << 30);
    one = CorpusCache::BytesOf(**probe.Get(a));
  }
  CorpusCache cache(one + one / 2);  // Room for one small corpus.
  ASSERT_TRUE(cache.Get(a).ok());
  ASSERT_TRUE(cache.Get(a).ok());  // Hit.
  ASSERT_TRUE(cache.Get(b).ok());  // Evicts a.
  ASSERT_TRUE(cache.Get(b).ok());  // Hit.
  ASSERT_TRUE(cache.Get(a).ok());  // Read again.
  CorpusCache::Counts counts = cache.counts();
  EXPECT_EQ(counts.reads, 3);
  EXPECT_EQ(counts.hits, 2);
  EXPECT_EQ(counts.entries, 1);
  EXPECT_LE(counts.bytes, one + one / 2);

  ASSERT_TRUE(cache.Get(big).ok());
  ASSERT_TRUE(cache.Get(big).ok());
  EXPECT_EQ(cache.counts().reads, 5);  // Never kept...
  ASSERT_TRUE(cache.Get(a).ok());
  EXPECT_EQ(cache.counts().hits, 3);  // ...and it evicted nothing.
}

TEST(CorpusCacheTest, AMissingFileIsNamedAndNothingIsKept) {
  CorpusCache cache(int64_t{1} << 30);
  const std::string dir = CorpusDir("missing");
  ASSERT_EQ(std::remove((dir + "/valid.txt").c_str()), 0);
  auto missing = cache.Get(dir);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("valid.txt"));
  EXPECT_EQ(cache.counts().entries, 0);

  ASSERT_TRUE(WriteFileAtomically(dir + "/valid.txt", "a b\n").ok());
  auto back = cache.Get(dir);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(cache.counts().entries, 1);
}

}  // namespace
}  // namespace ddlm
