#include "common/base/token_cache.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/corpus.h"
#include "common/base/file_io.h"

namespace ddlm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name); }

void SetModified(const std::string& path, int64_t seconds) {
  struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

std::string CorpusDir(const std::string& name) {
  const std::string dir = TempPath(name);
  EXPECT_TRUE(MakeDirectories(dir).ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/train.txt", "a b c\nd e a\nb b\n").ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/valid.txt", "a b\n").ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/test.txt", "c d f\n").ok());
  for (const char* file : {"/train.txt", "/valid.txt", "/test.txt"}) SetModified(dir + file, 1000000000);
  return dir;
}

std::vector<int64_t> TrainIds(const TokenCache::Entry& entry) {
  std::vector<int64_t> ids;
  entry.corpus->train->CopyIds(0, entry.corpus->train->tokens(), &ids);
  return ids;
}

TEST(TokenCacheTest, ACorpusIsTokenizedOnceAndThenFoundEvenByAnotherCache) {
  const std::string dir = CorpusDir("once");
  TokenCache cache(TempPath("cache-once"));
  auto first = cache.Get(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->built);
  auto expected = LoadCorpus(dir);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(TrainIds(*first), expected->train);
  EXPECT_EQ(first->corpus->dictionary.words(), expected->dictionary.words());

  auto second = cache.Get(dir);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->built);
  EXPECT_EQ(second->key, first->key);
  EXPECT_EQ(second->corpus.get(), first->corpus.get());  // Opened (and checked) once.
  TokenCache restarted(TempPath("cache-once"));          // A coordinator that restarted.
  auto third = restarted.Get(dir);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_FALSE(third->built);
  EXPECT_EQ(TrainIds(*third), expected->train);
  EXPECT_THAT(ListDirectory(TempPath("cache-once")), ElementsAre(first->key));  // No temporary left.
}

TEST(TokenCacheTest, AChangedFileIsAMissAndCollectRemovesWhatNoJobKeeps) {
  const std::string dir = CorpusDir("changed");
  TokenCache cache(TempPath("cache-changed"));
  auto old_entry = cache.Get(dir);
  ASSERT_TRUE(old_entry.ok()) << old_entry.status();
  ASSERT_TRUE(WriteFileAtomically(dir + "/valid.txt", "z z\n").ok());  // Replaced.
  auto new_entry = cache.Get(dir);
  ASSERT_TRUE(new_entry.ok()) << new_entry.status();
  EXPECT_TRUE(new_entry->built);
  EXPECT_NE(new_entry->key, old_entry->key);
  EXPECT_EQ(new_entry->corpus->dictionary.Find("z"), 6);  // After train's a b c <eos> d e.
  SetModified(dir + "/test.txt", 1500000000);             // Touched: another key too.
  EXPECT_NE(*TokenCache::KeyOf(dir), new_entry->key);

  auto removed = cache.Collect({new_entry->key});
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 1);
  EXPECT_THAT(ListDirectory(TempPath("cache-changed")), ElementsAre(new_entry->key));
  EXPECT_EQ(*cache.Collect({}), 1);
  EXPECT_TRUE(ListDirectory(TempPath("cache-changed")).empty());
}

TEST(TokenCacheTest, ADamagedEntryIsBuiltAgain) {
  const std::string dir = CorpusDir("damaged");
  TokenCache cache(TempPath("cache-damaged"));
  auto entry = cache.Get(dir);
  ASSERT_TRUE(entry.ok()) << entry.status();
  const std::vector<int64_t> ids = TrainIds(*entry);
  const std::string token_file = entry->path + "/train.tok";
  std::string bytes = *ReadFile(token_file);
  bytes[kTokenFileHeaderBytes] ^= 1;
  entry->corpus.reset();
  ASSERT_TRUE(WriteFileAtomically(token_file, bytes).ok());
  EXPECT_EQ(OpenTokenCorpus(entry->path).status().code(), absl::StatusCode::kDataLoss);

  // This cache opened the entry before the damage and keeps what it opened (removed by
  // hand, the entry would be gone from its map); a coordinator started now finds it.
  TokenCache restarted(TempPath("cache-damaged"));
  auto again = restarted.Get(dir);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->built);
  EXPECT_EQ(again->key, entry->key);
  EXPECT_EQ(TrainIds(*again), ids);
  EXPECT_TRUE(OpenTokenCorpus(entry->path).ok());
}

// Gets from several threads at once (run under --config=tsan in CI): a corpus is built
// once, by whichever Get comes first, and the others wait for it and share it; another
// corpus is built meanwhile, not after it.
TEST(TokenCacheTest, ConcurrentGetsOfOneCorpusBuildItOnceAndShareIt) {
  const std::string a = CorpusDir("concurrent-a");
  const std::string b = CorpusDir("concurrent-b");
  ASSERT_TRUE(WriteFileAtomically(b + "/valid.txt", "q r\n").ok());
  TokenCache cache(TempPath("cache-concurrent"));
  std::vector<absl::StatusOr<TokenCache::Entry>> got(6, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] { got[i] = cache.Get(i % 2 == 0 ? a : b); });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(got[i].ok()) << got[i].status();
    EXPECT_EQ(got[i]->corpus.get(), got[i % 2]->corpus.get()) << i;  // One corpus object per key.
  }
  EXPECT_NE(got[0]->key, got[1]->key);
  const TokenCache::Counts counts = cache.counts();
  EXPECT_EQ(counts.builds, 2);
  EXPECT_EQ(counts.hits, 4);
  EXPECT_EQ(counts.opens, 0);
  EXPECT_THAT(ListDirectory(TempPath("cache-concurrent")), ::testing::UnorderedElementsAre(got[0]->key, got[1]->key));
}

TEST(TokenCacheTest, AMissingOrBadCorpusIsNamedAndLeavesNothing) {
  const std::string dir = CorpusDir("bad");
  TokenCache cache(TempPath("cache-bad"));
  ASSERT_EQ(std::remove((dir + "/test.txt").c_str()), 0);
  auto missing = cache.Get(dir);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("test.txt"));
  ASSERT_TRUE(WriteFileAtomically(dir + "/test.txt", "bad \xFF\n").ok());
  auto bad = cache.Get(dir);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("test.txt is not valid UTF-8"));
  EXPECT_TRUE(ListDirectory(TempPath("cache-bad")).empty());  // The failed build's directory is gone.
}

}  // namespace
}  // namespace ddlm
