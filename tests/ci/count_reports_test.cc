// .ci/run's counting (count_reports.sh) against reports of every kind Bazel 4.2.3 and
// gtest write: what it prints must be what happened.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/base/subprocess.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const char kGtestPass[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="0" disabled="0" errors="0" time="0.1" name="AllTests">
  <testsuite name="T" tests="3" failures="0" disabled="0" errors="0" time="0.1">
    <testcase name="a" status="run" result="completed" time="0" classname="T" />
    <testcase name="b" status="run" result="completed" time="0" classname="T" />
    <testcase name="c" status="run" result="completed" time="0" classname="T" />
  </testsuite>
</testsuites>
)";
const char kGtestFailure[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="1" disabled="0" errors="0" time="0.1" name="AllTests">
  <testsuite name="T" tests="3" failures="1" disabled="0" errors="0" time="0.1">
    <testcase name="a" status="run" result="completed" time="0" classname="T">
      <failure message="x.cc:1&#x0A;Expected equality" type=""></failure>
    </testcase>
  </testsuite>
</testsuites>
)";
const char kGtestSkip[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="0" disabled="0" errors="0" time="0.1" name="AllTests">
  <testsuite name="T" tests="2" failures="0" disabled="0" errors="0" time="0.1">
    <testcase name="a" status="run" result="completed" time="0" classname="T" />
    <testcase name="b" status="run" result="skipped" time="0" classname="T">
      <skipped message="x.cc:9&#x0A;no CUDA device here"></skipped>
    </testcase>
  </testsuite>
</testsuites>
)";
// What Bazel's test-setup.sh writes when the binary left no report.
std::string BazelReport(const std::string& error) {
  return absl::StrCat(R"(<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="t" tests="1" failures="0" errors=")",
                      error.empty() ? "0" : "1", R"(">
    <testcase name="t" status="run" duration="3" time="3">)",
                      error, R"(</testcase>
    <system-out>Generated test.log</system-out>
  </testsuite>
</testsuites>
)");
}

class CountReportsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testlogs_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/testlogs-",
                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(MakeDirectories(testlogs_).ok());
  }
  void Report(const std::string& target, const std::string& xml) {
    const std::string dir =
        absl::StrCat(testlogs_, "/", target.substr(2, target.find(':') - 2), "/", target.substr(target.find(':') + 1));
    ASSERT_TRUE(MakeDirectories(dir).ok());
    ASSERT_TRUE(WriteFileAtomically(dir + "/test.xml", xml).ok());
  }
  // Runs the script; returns its last stdout line, and everything it said in `said`.
  std::string Count(const std::string& bazel_output, const std::vector<std::string>& targets, std::string* said) {
    const std::string output_path = testlogs_ + "/bazel_output.txt";
    EXPECT_TRUE(WriteFileAtomically(output_path, bazel_output).ok());
    std::vector<std::string> argv = {"tests/ci/count_reports.sh", testlogs_, output_path};
    argv.insert(argv.end(), targets.begin(), targets.end());
    Subprocess script(argv);
    EXPECT_EQ(script.Wait(), 0);
    *said = script.output();
    const size_t at = said->rfind("passed=");
    return at == std::string::npos ? "" : said->substr(at, said->find('\n', at) - at);
  }
  std::string testlogs_;
};

TEST_F(CountReportsTest, EveryKindOfReportCountsForWhatHappened) {
  Report("//a:pass", kGtestPass);
  Report("//a:fail", kGtestFailure);
  Report("//a:skip", kGtestSkip);
  Report("//a:crash", BazelReport(R"(<error message="Terminated by signal SIGSEGV"></error>)"));
  Report("//a:timeout", BazelReport(R"(<error message="Timed out"></error>)"));
  Report("//a:exit", BazelReport(R"(<error message="exited with error code 1"></error>)"));
  Report("//a:sh_pass", BazelReport(""));  // A test that is not gtest, passing...
  std::string chatty = BazelReport("");    // ...and one whose output mentions errors.
  chatty.replace(chatty.find("Generated test.log"), 18, "<error message=\"printed by the test\"> <failure>");
  Report("//a:sh_chatty", chatty);
  // //a:none has no report at all.
  const std::string bazel_output =
      "//a:pass                 PASSED in 0.1s\n"
      "//a:fail                 FAILED in 0.1s\n"
      "//a:skip        (cached) PASSED in 0.1s\n"
      "//a:crash                FAILED in 0.2s\n"
      "//a:timeout              TIMEOUT in 60.0s\n"
      "//a:exit                 FAILED in 0.1s\n"
      "//a:sh_pass              PASSED in 0.1s\n"
      "//a:sh_chatty            PASSED in 0.1s\n"
      "//a:none                 NO STATUS\n";
  std::string said;
  const std::string counts = Count(bazel_output,
                                   {"//a:pass", "//a:fail", "//a:skip", "//a:crash", "//a:timeout", "//a:exit",
                                    "//a:sh_pass", "//a:sh_chatty", "//a:none"},
                                   &said);
  // Passed: 3 + 2 (fail's others) + 1 (skip's other) + 1 (sh_pass); failed: fail's 1,
  // crash, timeout, exit, none; skipped: 1.
  EXPECT_EQ(counts, "passed=8 failed=5 skipped=1") << said;
  EXPECT_THAT(said, HasSubstr("FAILED //a:fail: 1 of 3 case(s) failed"));
  EXPECT_THAT(said, HasSubstr("FAILED //a:crash: Terminated by signal SIGSEGV"));
  EXPECT_THAT(said, HasSubstr("FAILED //a:timeout: Timed out (bazel: TIMEOUT)"));
  EXPECT_THAT(said, HasSubstr("FAILED //a:exit: exited with error code 1"));
  EXPECT_THAT(said, HasSubstr("FAILED //a:none: no test report (bazel: NO STATUS)"));
  EXPECT_THAT(said, HasSubstr("//a:skip: 1 test(s) skipped"));
  EXPECT_THAT(said, Not(HasSubstr("FAILED //a:pass")));
  EXPECT_THAT(said, Not(HasSubstr("FAILED //a:sh_pass")));
  EXPECT_THAT(said, Not(HasSubstr("FAILED //a:sh_chatty")));
}

TEST_F(CountReportsTest, ATargetBazelFailedCountsAsAFailureWhateverItsReportSays) {
  // gtest wrote a clean report, then the binary died (a sanitizer's report at exit, a
  // crash in a destructor): Bazel says FAILED.
  Report("//b:late_crash", kGtestPass);
  Report("//b:fine", kGtestPass);
  std::string said;
  EXPECT_EQ(Count("//b:late_crash   FAILED in 0.5s\n//b:fine   (cached) PASSED in 0.1s\n",
                  {"//b:late_crash", "//b:fine"}, &said),
            "passed=6 failed=1 skipped=0")
      << said;
  EXPECT_THAT(said, HasSubstr("FAILED //b:late_crash: bazel says FAILED though its report shows no failed case"));
  // A target whose name begins another's is not confused with it (the longer one's
  // line last, where a prefix match would take it).
  EXPECT_EQ(Count("//b:fine   PASSED in 0.1s\n//b:fine_but_longer   FAILED in 0.5s\n", {"//b:fine"}, &said),
            "passed=3 failed=0 skipped=0")
      << said;
  // A stale report of a target that no longer builds.
  EXPECT_EQ(Count("//b:fine   FAILED TO BUILD\n", {"//b:fine"}, &said), "passed=3 failed=1 skipped=0") << said;
  EXPECT_THAT(said, HasSubstr("FAILED //b:fine: bazel says FAILED TO BUILD"));
}

}  // namespace
}  // namespace ddlm
