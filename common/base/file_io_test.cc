#include "common/base/file_io.h"

#include <cstdlib>

#include "gtest/gtest.h"

namespace ddlm {
namespace {

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

TEST(FileIoTest, WriteThenReadRoundTrips) {
  const std::string path = TempDir() + "/roundtrip.bin";
  std::string data("a\0b\xff", 4);
  ASSERT_TRUE(WriteFileAtomically(path, data).ok());
  absl::StatusOr<std::string> read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, data);
  // Overwrite replaces the whole file.
  ASSERT_TRUE(WriteFileAtomically(path, "xy").ok());
  EXPECT_EQ(*ReadFile(path), "xy");
}

TEST(FileIoTest, ReadFilePrefixReadsNoMoreThanAsked) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp ? tmp : "/tmp") + "/prefix.txt";
  const std::string contents(200000, 'x');
  ASSERT_TRUE(WriteFileAtomically(path, contents + "yz").ok());
  EXPECT_EQ(ReadFilePrefix(path, 200001).value(), contents + "y");
  EXPECT_EQ(ReadFilePrefix(path, 1 << 30).value(), contents + "yz");
  EXPECT_EQ(ReadFilePrefix(path, 0).value(), "");
  EXPECT_EQ(ReadFilePrefix(path + ".missing", 10).status().code(), absl::StatusCode::kNotFound);
}

TEST(FileIoTest, MissingFileIsNotFoundAndNamesThePath) {
  absl::StatusOr<std::string> read = ReadFile(TempDir() + "/no-such-file");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(read.status().message().find("no-such-file"), absl::string_view::npos);
}

TEST(FileIoTest, WriteIntoMissingDirectoryFailsCleanly) {
  absl::Status s = WriteFileAtomically(TempDir() + "/missing-dir/file", "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
}

TEST(FileIoTest, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
  // Incremental computation equals one pass.
  EXPECT_EQ(Crc32("56789", Crc32("1234")), 0xCBF43926u);
}

TEST(FileIoTest, RemoveTreeRemovesEverythingAndFollowsNoSymlink) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string base = std::string(tmp ? tmp : "/tmp") + "/remove_tree";
  const std::string keep = base + "-kept";
  ASSERT_EQ(std::system(("rm -rf " + base + " " + keep + " && mkdir -p " + base + "/a/b " + keep + " && touch " + base +
                         "/a/b/f " + base + "/g " + keep + "/precious && ln -s " + keep + " " + base + "/a/link")
                            .c_str()),
            0);
  EXPECT_EQ(ListDirectory(base), (std::vector<std::string>{"a", "g"}));
  ASSERT_TRUE(RemoveTree(base).ok());
  EXPECT_TRUE(ListDirectory(base).empty());
  EXPECT_EQ(ReadFile(base + "/g").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(ReadFile(keep + "/precious").ok());  // The link went, not what it named.
  EXPECT_TRUE(RemoveTree(base).ok());              // Already gone: fine.
}

TEST(FileIoTest, MakeDirectoriesMakesParentsAndNamesWhatIsInTheWay) {
  const std::string base = std::string(std::getenv("TEST_TMPDIR")) + "/mkdirs";
  ASSERT_TRUE(MakeDirectories(base + "/a/b/c").ok());
  ASSERT_TRUE(MakeDirectories(base + "/a/b/c").ok());  // Already there.
  EXPECT_EQ(ListDirectory(base + "/a/b"), std::vector<std::string>{"c"});
  ASSERT_TRUE(WriteFileAtomically(base + "/file", "x").ok());
  const absl::Status under_file = MakeDirectories(base + "/file/d");
  EXPECT_FALSE(under_file.ok());
  EXPECT_NE(under_file.message().find(base + "/file"), std::string::npos) << under_file;
  const absl::Status is_file = MakeDirectories(base + "/file");
  EXPECT_EQ(is_file.code(), absl::StatusCode::kFailedPrecondition) << is_file;
}

}  // namespace
}  // namespace ddlm
