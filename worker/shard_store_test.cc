#include "worker/shard_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/base/sharding.h"

namespace ddlm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string TempDir(const std::string& name) { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name); }

std::vector<int64_t> Ids(int n, int vocabulary) {
  std::vector<int64_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back((i * 7919) % vocabulary);
  return ids;
}

// Serves `bytes` in pieces of `piece` bytes (pieces that cut ids in two, too), and
// counts the calls.
struct FakeDownload {
  std::string bytes;
  size_t piece = 7;
  int calls = 0;
  ShardStore::Download AsDownload() {
    return [this](const std::function<absl::Status(absl::string_view)>& sink) -> absl::Status {
      ++calls;
      for (size_t offset = 0; offset < bytes.size(); offset += piece) {
        absl::Status s = sink(absl::string_view(bytes).substr(offset, piece));
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    };
  }
};

std::vector<int64_t> Read(const TokenFile& file) {
  std::vector<int64_t> ids;
  file.CopyIds(0, file.tokens(), &ids);
  return ids;
}

TEST(ShardStoreTest, AShardIsDownloadedOnceAndFoundAgainByAnotherStoreAsInt32) {
  const std::vector<int64_t> ids = Ids(1000, 300);
  FakeDownload coordinator{EncodeTokenIds(ids, 0, 1000)};
  ShardStore store(TempDir("once"));
  auto first = store.Get("corpus-train-0-1000", 1000, 300, coordinator.AsDownload());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(Read(**first), ids);
  EXPECT_EQ((*first)->width(), 4);
  const int32_t* raw = static_cast<const int32_t*>((*first)->raw_ids());
  EXPECT_EQ(raw[999], ids[999]);
  EXPECT_EQ(store.downloads(), 1);

  auto held = store.Get("corpus-train-0-1000", 1000, 300, coordinator.AsDownload());  // The next attempt.
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(held->get(), first->get());  // What this store had open: not read again.
  EXPECT_EQ(store.reused(), 1);

  ShardStore restarted(TempDir("once"));  // The worker came back.
  auto again = restarted.Get("corpus-train-0-1000", 1000, 300, coordinator.AsDownload());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Read(**again), ids);
  EXPECT_EQ(coordinator.calls, 1);
  EXPECT_EQ(restarted.reused(), 1);
  EXPECT_EQ(restarted.downloads(), 0);
}

TEST(ShardStoreTest, ADamagedOrDifferentShardOnDiskIsDownloadedAgain) {
  const std::vector<int64_t> ids = Ids(500, 50);
  FakeDownload coordinator{EncodeTokenIds(ids, 0, 500)};
  {
    ShardStore store(TempDir("damaged"));
    ASSERT_TRUE(store.Get("s", 500, 50, coordinator.AsDownload()).ok());
  }
  const std::string path = TempDir("damaged/s.ddlm-shard");
  std::string bytes = *ReadFile(path);
  bytes[kTokenFileHeaderBytes + 8] ^= 1;
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  ShardStore store(TempDir("damaged"));  // The worker came back.
  auto again = store.Get("s", 500, 50, coordinator.AsDownload());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Read(**again), ids);
  EXPECT_EQ(coordinator.calls, 2);
  // Of another size than assigned (another vocabulary, too): not this shard.
  coordinator.bytes = EncodeTokenIds(ids, 0, 400);
  auto shorter = store.Get("s", 400, 50, coordinator.AsDownload());
  ASSERT_TRUE(shorter.ok()) << shorter.status();
  EXPECT_EQ((*shorter)->tokens(), 400);
  EXPECT_EQ(coordinator.calls, 3);
}

TEST(ShardStoreTest, ADownloadOfTheWrongSizeOrWithBadIdsIsDataLossAndLeavesNothing) {
  const std::vector<int64_t> ids = Ids(100, 50);
  ShardStore store(TempDir("bad"));
  FakeDownload short_one{EncodeTokenIds(ids, 0, 99)};
  auto s = store.Get("a", 100, 50, short_one.AsDownload());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr("not the 100 tokens assigned"));
  FakeDownload long_one{EncodeTokenIds(ids, 0, 100) + EncodeTokenIds(ids, 0, 1)};
  EXPECT_EQ(store.Get("a", 100, 50, long_one.AsDownload()).status().code(), absl::StatusCode::kDataLoss);
  FakeDownload ragged{EncodeTokenIds(ids, 0, 100) + "xy"};
  EXPECT_EQ(store.Get("a", 100, 50, ragged.AsDownload()).status().code(), absl::StatusCode::kDataLoss);
  FakeDownload outside{EncodeTokenIds(ids, 0, 100)};
  auto o = store.Get("a", 100, 20, outside.AsDownload());  // Ids up to 49 for 20 words.
  EXPECT_EQ(o.status().code(), absl::StatusCode::kDataLoss);
  FakeDownload failing{EncodeTokenIds(ids, 0, 100)};
  auto f = store.Get("a", 100, 50, [&](const std::function<absl::Status(absl::string_view)>& sink) {
    (void)sink(absl::string_view(failing.bytes).substr(0, 40));
    return absl::DataLossError("shard: downloaded bytes fail their CRC-32 check");
  });
  EXPECT_EQ(f.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(ListDirectory(TempDir("bad")).empty());  // No file, whole or partial.
  for (const char* name : {"", "../x", ".hidden", "a/b", "a b"}) {
    EXPECT_EQ(store.Get(name, 100, 50, failing.AsDownload()).status().code(), absl::StatusCode::kInvalidArgument)
        << name;
  }
}

TEST(ShardStoreTest, KeepRemovesOtherShardsOnly) {
  const std::vector<int64_t> ids = Ids(10, 5);
  FakeDownload coordinator{EncodeTokenIds(ids, 0, 10)};
  ShardStore store(TempDir("keep"));
  for (const char* id : {"old-train", "new-train", "new-valid"}) {
    ASSERT_TRUE(store.Get(id, 10, 5, coordinator.AsDownload()).ok());
  }
  ASSERT_TRUE(WriteFileAtomically(TempDir("keep/notes.txt"), "mine").ok());
  ASSERT_TRUE(WriteFileAtomically(TempDir("keep/notes.tok"), "mine too").ok());  // Not a shard's name.
  ASSERT_TRUE(store.Keep({"new-train", "new-valid"}).ok());
  EXPECT_THAT(ListDirectory(TempDir("keep")),
              ElementsAre("new-train.ddlm-shard", "new-valid.ddlm-shard", "notes.tok", "notes.txt"));
}

}  // namespace
}  // namespace ddlm
