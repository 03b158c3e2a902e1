#include "common/base/data_roots.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_replace.h"
#include "common/base/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

class DataRootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    base_ = std::string(tmp ? tmp : "/tmp") + "/data_roots";
    ::mkdir(base_.c_str(), 0755);
    for (const std::string& dir : {base_ + "/root", base_ + "/root/wiki", base_ + "/secret"}) {
      ::mkdir(dir.c_str(), 0755);
    }
    for (const char* file : {"train.txt", "valid.txt", "test.txt"}) {
      ASSERT_TRUE(WriteFileAtomically(base_ + "/root/wiki/" + file, "a b c\n").ok());
      ASSERT_TRUE(WriteFileAtomically(base_ + "/secret/" + std::string(file), "x\n").ok());
    }
    ::symlink((base_ + "/secret").c_str(), (base_ + "/root/escape").c_str());
    ::mkdir((base_ + "/root/sneaky").c_str(), 0755);
    ::symlink((base_ + "/secret/train.txt").c_str(), (base_ + "/root/sneaky/train.txt").c_str());
  }

  // The refusal for `path`, with the path itself blanked out.
  std::string Refusal(const DataRoots& roots, const std::string& path) {
    absl::StatusOr<std::string> r = roots.ResolveCorpusDir(path);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << path;
    return absl::StrReplaceAll(r.status().message(), {{"'" + path + "'", "'PATH'"}});
  }

  std::string base_;
};

TEST_F(DataRootsTest, ServesCorporaInsideARootAndNamesMissingOnesThere) {
  auto roots = DataRoots::Create({base_ + "/root"});
  ASSERT_TRUE(roots.ok()) << roots.status();
  auto dir = roots->ResolveCorpusDir(base_ + "/root/./wiki/");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_THAT(*dir, ::testing::EndsWith("/root/wiki"));
  EXPECT_EQ(roots->ResolveCorpusDir(base_ + "/root/nothing").status().code(), absl::StatusCode::kNotFound);
  // Relative paths are taken from the working directory.
  ASSERT_EQ(::chdir(base_.c_str()), 0);
  EXPECT_TRUE(roots->ResolveCorpusDir("root/wiki").ok());
}

TEST_F(DataRootsTest, EverythingElseGetsOneAnswerWhetherOrNotItExists) {
  auto roots = DataRoots::Create({base_ + "/root"});
  ASSERT_TRUE(roots.ok());
  const std::string answer = Refusal(*roots, base_ + "/secret");
  EXPECT_THAT(answer, HasSubstr("not inside a data directory"));
  EXPECT_EQ(Refusal(*roots, "/etc"), answer);
  EXPECT_EQ(Refusal(*roots, "/no/such/place"), answer);
  EXPECT_EQ(Refusal(*roots, base_ + "/root/../secret"), answer);     // '..'
  EXPECT_EQ(Refusal(*roots, base_ + "/root/wiki/../wiki"), answer);  // Any '..'.
  EXPECT_EQ(Refusal(*roots, base_ + "/root/escape"), answer);        // A symlinked directory.
  EXPECT_EQ(Refusal(*roots, base_ + "/root/sneaky"), answer);        // A symlinked file.
  EXPECT_EQ(Refusal(*roots, ""), answer);
}

TEST_F(DataRootsTest, RootsMustBeDirectoriesAndNoneServesNothing) {
  EXPECT_EQ(DataRoots::Create({base_ + "/missing"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DataRoots::Create({base_ + "/root/wiki/train.txt"}).status().code(), absl::StatusCode::kInvalidArgument);
  auto none = DataRoots::Create({});
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(Refusal(*none, base_ + "/root/wiki"), HasSubstr("--data_root"));
  // Several roots.
  auto two = DataRoots::Create({base_ + "/root", base_ + "/secret"});
  ASSERT_TRUE(two.ok());
  EXPECT_TRUE(two->ResolveCorpusDir(base_ + "/secret").ok());
  EXPECT_TRUE(two->ResolveCorpusDir(base_ + "/root/escape").ok());  // Leads into a root.
}

TEST_F(DataRootsTest, ResolvesFilesInsideARootAndNamesTheField) {
  auto roots = DataRoots::Create({base_ + "/root"});
  ASSERT_TRUE(roots.ok());
  auto file = roots->ResolveFile(base_ + "/root/wiki/test.txt", "file");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_THAT(*file, ::testing::EndsWith("/root/wiki/test.txt"));
  auto missing = roots->ResolveFile(base_ + "/root/wiki/nothing.txt", "file");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("file '"));
  auto dir = roots->ResolveFile(base_ + "/root/wiki", "file");
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kInvalidArgument);
  // Outside by path, through a symlink to an existing file, or with '..': PERMISSION_DENIED.
  for (const std::string& path : {base_ + "/secret/train.txt", base_ + "/root/sneaky/train.txt",
                                  base_ + "/root/escape/train.txt", base_ + "/root/../secret/nothing.txt"}) {
    auto r = roots->ResolveFile(path, "file");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << path;
    EXPECT_THAT(r.status().message(), HasSubstr("is not inside a data directory")) << path;
  }
}

}  // namespace
}  // namespace ddlm
