#include "common/base/failpoint.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using failpoint_internal::ParseSpec;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(FailpointSpecTest, ParsesNamesAndHits) {
  std::vector<std::pair<std::string, int>> points;
  std::string error;
  ASSERT_TRUE(ParseSpec("train_step:25, checkpoint_upload : 2", &points, &error)) << error;
  EXPECT_THAT(points, ElementsAre(Pair("train_step", 25), Pair("checkpoint_upload", 2)));
  ASSERT_TRUE(ParseSpec("", &points, &error));
  EXPECT_TRUE(points.empty());
}

TEST(FailpointSpecTest, NamesTheMalformedItem) {
  std::vector<std::pair<std::string, int>> points;
  for (const char* bad : {"train_step", "train_step:0", "train_step:x", ":3", "a:1:2", "a:-1"}) {
    std::string error;
    EXPECT_FALSE(ParseSpec(bad, &points, &error)) << bad;
    EXPECT_THAT(error, HasSubstr(std::string("\"") + bad + "\"")) << bad;
  }
}

// A child process with DDLM_FAILPOINTS=`spec` that reaches failpoints `path` in order
// and then exits 7. Its stderr comes back on `*err_fd`.
pid_t StartChild(const char* spec, std::vector<const char*> path, int* err_fd) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    if (spec != nullptr) {
      ::setenv("DDLM_FAILPOINTS", spec, 1);
    } else {
      ::unsetenv("DDLM_FAILPOINTS");
    }
    for (const char* name : path) Failpoint(name);
    ::_exit(7);
  }
  ::close(fds[1]);
  *err_fd = fds[0];
  return pid;
}

std::string ReadSome(int fd) {
  char buffer[512];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

TEST(FailpointTest, StopsAtTheNthHitOfItsNameAndGoesOnWhenContinued) {
  int err = -1;
  const pid_t pid = StartChild("x:2", {"x", "y", "y", "x", "x"}, &err);
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(status)) << status;
  EXPECT_EQ(WSTOPSIG(status), SIGSTOP);
  // The line came before the stop; the third hit of x does not stop it again.
  EXPECT_EQ(ReadSome(err), "ddlm failpoint x hit 2 (pid " + std::to_string(pid) + ")\n");
  ASSERT_EQ(::kill(pid, SIGCONT), 0);
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 7);
  EXPECT_EQ(ReadSome(err), "");
  ::close(err);
}

TEST(FailpointTest, UnarmedOrArmedElsewhereItNeverStops) {
  for (const char* spec : {static_cast<const char*>(nullptr), "", "z:1", "x:3"}) {
    int err = -1;
    const pid_t pid = StartChild(spec, {"x", "y", "x"}, &err);
    ASSERT_GT(pid, 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, WUNTRACED), pid);
    ASSERT_TRUE(WIFEXITED(status)) << (spec ? spec : "unset") << ": " << status;
    EXPECT_EQ(WEXITSTATUS(status), 7);
    EXPECT_EQ(ReadSome(err), "");
    ::close(err);
  }
}

TEST(FailpointTest, AMalformedSpecEndsTheProcessAtItsFirstFailpointNamingIt) {
  int err = -1;
  const pid_t pid = StartChild("x=2", {"y"}, &err);
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, WUNTRACED), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_THAT(ReadSome(err), HasSubstr("DDLM_FAILPOINTS: \"x=2\" is not NAME:N"));
  ::close(err);
}

}  // namespace
}  // namespace ddlm
