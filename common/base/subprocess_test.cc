#include "common/base/subprocess.h"

#include <signal.h>
#include <stdlib.h>

#include <chrono>

#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(SubprocessTest, WaitsForLinesInOrderAndReportsTheExitCode) {
  Subprocess p({"/bin/sh", "-c", "echo alpha one; echo beta two; echo alpha three; exit 3"});
  std::string line;
  ASSERT_TRUE(p.WaitForLine("alpha", &line));
  EXPECT_EQ(line, "alpha one");
  ASSERT_TRUE(p.WaitForLine("alpha", &line));  // After the previous match.
  EXPECT_EQ(line, "alpha three");
  EXPECT_FALSE(p.WaitForLine("alpha"));  // The output ended.
  EXPECT_EQ(p.Wait(), 3);
  EXPECT_EQ(p.output(), "alpha one\nbeta two\nalpha three\n");
}

TEST(SubprocessTest, TheChildGetsTheExtraEnvironmentAndInheritsTheRest) {
  ASSERT_EQ(::setenv("DDLM_SUBPROCESS_TEST_KEPT", "kept", 1), 0);
  ASSERT_EQ(::setenv("DDLM_SUBPROCESS_TEST_REPLACED", "old", 1), 0);
  SubprocessOptions options;
  options.env = {"DDLM_SUBPROCESS_TEST_REPLACED=new", "DDLM_SUBPROCESS_TEST_ADDED=a=b"};
  Subprocess p({"/bin/sh", "-c",
                "echo \"$DDLM_SUBPROCESS_TEST_KEPT $DDLM_SUBPROCESS_TEST_REPLACED $DDLM_SUBPROCESS_TEST_ADDED\"; "
                "env | grep -c DDLM_SUBPROCESS_TEST_REPLACED="},
               options);
  EXPECT_EQ(p.Wait(), 0);
  EXPECT_EQ(p.output(), "kept new a=b\n1\n");  // Replaced, not given twice.
}

TEST(SubprocessTest, ALineThatNeverComesTimesOutAndTheChildIsReaped) {
  Subprocess p({"/bin/sh", "-c", "echo started; exec sleep 600"});
  ASSERT_TRUE(p.WaitForLine("started"));
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.WaitForLine("never", nullptr, std::chrono::milliseconds(20)));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(60));
  EXPECT_FALSE(p.TryWait().has_value());  // Still running.
  p.Signal(SIGKILL);
  EXPECT_EQ(p.Wait(), 128 + SIGKILL);
  EXPECT_EQ(p.TryWait(), 128 + SIGKILL);
}

TEST(SubprocessTest, WaitForExitReapsAChildThatStopsAndGivesUpOnOneThatDoesNot) {
  Subprocess quick({"/bin/sh", "-c", "echo bye; exit 4"});
  EXPECT_EQ(quick.WaitForExit(std::chrono::seconds(60)), 4);
  EXPECT_EQ(quick.output(), "bye\n");

  // Ignores SIGTERM, as a hung process would.
  Subprocess stubborn({"/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 600"});
  ASSERT_TRUE(stubborn.WaitForLine("ready"));
  stubborn.Signal(SIGTERM);
  EXPECT_FALSE(stubborn.WaitForExit(std::chrono::milliseconds(20)).has_value());
  EXPECT_FALSE(stubborn.TryWait().has_value());  // Not reaped: still running.
  stubborn.Signal(SIGKILL);
  EXPECT_EQ(stubborn.WaitForExit(std::chrono::seconds(60)), 128 + SIGKILL);

  // Closes its output early and runs on: the end of its output is not its exit.
  Subprocess quiet({"/bin/sh", "-c", "echo closing; exec >/dev/null 2>&1; trap '' TERM; exec sleep 600"});
  ASSERT_TRUE(quiet.WaitForLine("closing"));
  EXPECT_FALSE(quiet.WaitForExit(std::chrono::milliseconds(50)).has_value());
  quiet.Signal(SIGKILL);
  EXPECT_EQ(quiet.WaitForExit(std::chrono::seconds(60)), 128 + SIGKILL);
}

TEST(SubprocessTest, AMissingBinaryExits127) {
  std::string output;
  EXPECT_EQ(RunBinary({"/nonexistent/binary"}, &output), 127);
  EXPECT_NE(output.find("cannot exec /nonexistent/binary"), std::string::npos);
}

TEST(SubprocessTest, SiblingBinariesOfABazelBuild) {
  EXPECT_EQ(
      SiblingBinary("/r/bazel-out/k8-fastbuild/bin/coordinator/cli/ddlm", "coordinator/cli", "worker", "ddlm_worker"),
      "/r/bazel-out/k8-fastbuild/bin/worker/ddlm_worker");
  EXPECT_EQ(SiblingBinary("/r/bin/coordinator/cli/ddlm", "coordinator/cli", "coordinator", "ddlm_coordinator"),
            "/r/bin/coordinator/ddlm_coordinator");
}

TEST(SubprocessTest, SiblingBinariesCopiedToOneDirectory) {
  EXPECT_EQ(SiblingBinary("/usr/local/bin/ddlm", "coordinator/cli", "worker", "ddlm_worker"),
            "/usr/local/bin/ddlm_worker");
}

TEST(SubprocessTest, WithoutGlogLinesKeepsWhatTheBinaryPrinted) {
  const std::string output =
      "I20261203 19:00:00.000000    12 blas.cc:1] BLAS: MKL\n"
      "w1 w2\n"
      "W20261203 19:00:00.000001    12 x.cc:2] careful\n"
      "I2 is not a log line\n"
      "last";
  EXPECT_EQ(WithoutGlogLines(output), "w1 w2\nI2 is not a log line\nlast\n");
  EXPECT_EQ(WithoutGlogLines(""), "");
}

}  // namespace
}  // namespace ddlm
