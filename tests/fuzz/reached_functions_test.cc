// reached_functions.sh against libFuzzer coverage reports (-print_coverage=1, as the
// fuzz build prints them): what it says a target reached must be what the report says.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/base/file_io.h"
#include "common/base/subprocess.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Four of ddlm's functions (one in an anonymous namespace, one with an ABI tag, one
// const member), one uncovered, and functions of other code that do not count.
const char kReport[] =
    "#1234\tDONE   cov: 10 ft: 20 corp: 3/1Kb exec/s: 100 rss: 50Mb\n"
    "COVERAGE:\n"
    "COVERED_FUNC: hits: 140 edges: 24/46 ddlm::JobServiceImpl::Admit(grpc::ServerContextBase const&, "
    "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> > const*) "
    "/proc/self/cwd/coordinator/rpc/services.cc:148\n"
    "COVERED_FUNC: hits: 3 edges: 2/9 ddlm::(anonymous namespace)::TensorBytes(ddlm::TensorIndex const&) "
    "/proc/self/cwd/common/base/checkpoint_format.cc:40\n"
    "COVERED_FUNC: hits: 8 edges: 5/5 ddlm::EncodeTokenIds[abi:cxx11](std::vector<int> const&, long, long) "
    "/proc/self/cwd/common/base/sharding.cc:12\n"
    "COVERED_FUNC: hits: 287 edges: 13/44 ddlm::AccessControl::Authenticate(std::optional<std::__cxx11::"
    "basic_string<char> > const&) const /proc/self/cwd/coordinator/access_control.cc:72\n"
    "UNCOVERED_PC: /proc/self/cwd/coordinator/access_control.cc:80\n"
    "UNCOVERED_FUNC: hits: 0 edges: 0/12 ddlm::AccessControl::AllowJob(ddlm::Caller const&, "
    "std::__cxx11::basic_string<char> const&, std::__cxx11::basic_string<char> const&) "
    "/proc/self/cwd/coordinator/access_control.cc:102\n"
    "COVERED_FUNC: hits: 9 edges: 3/4 grpc::Status::Status() /usr/include/grpcpp/impl/codegen/status.h:40\n"
    "COVERED_FUNC: hits: 9 edges: 1/1 LLVMFuzzerTestOneInput /proc/self/cwd/tests/fuzz/services_fuzzer.cc:300\n";

struct ScriptRun {
  int code;
  std::string output;
};

ScriptRun Reached(const std::string& report, const std::string& required, std::string* reached = nullptr) {
  const std::string dir = std::getenv("TEST_TMPDIR");
  EXPECT_TRUE(WriteFileAtomically(dir + "/log", report).ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/required", required).ok());
  ScriptRun run;
  run.code = RunBinary(
      {"/bin/bash", "tests/fuzz/reached_functions.sh", dir + "/log", dir + "/required", dir + "/reached"}, &run.output);
  if (reached != nullptr) *reached = ReadFile(dir + "/reached").value_or("");
  return run;
}

TEST(ReachedFunctionsTest, CountsDdlmsFunctionsAndPassesWhenEveryRequiredOneWasReached) {
  std::string reached;
  const ScriptRun run = Reached(kReport,
                                "# required\n"
                                "ddlm::JobServiceImpl::Admit\n"
                                "ddlm::{anonymous}::TensorBytes   # anonymous namespace\n"
                                "ddlm::EncodeTokenIds\n"
                                "ddlm::AccessControl::Authenticate\n",
                                &reached);
  EXPECT_EQ(run.code, 0) << run.output;
  // Four reached of five: grpc's and the harness's own functions do not count.
  EXPECT_EQ(run.output, "reached 4 of 5 ddlm functions, 4 of 4 required\n");
  EXPECT_EQ(reached,
            "ddlm::AccessControl::Authenticate\n"
            "ddlm::EncodeTokenIds\n"
            "ddlm::JobServiceImpl::Admit\n"
            "ddlm::{anonymous}::TensorBytes\n");
}

TEST(ReachedFunctionsTest, FailsNamingARequiredFunctionThatWasNotReached) {
  const ScriptRun run = Reached(kReport, "ddlm::JobServiceImpl::Admit\nddlm::AccessControl::AllowJob\nddlm::Nowhere\n");
  EXPECT_EQ(run.code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("reached 4 of 5 ddlm functions, 1 of 3 required\n"));
  EXPECT_THAT(run.output, HasSubstr("not reached: ddlm::AccessControl::AllowJob\n"));
  EXPECT_THAT(run.output, HasSubstr("not reached: ddlm::Nowhere\n"));
  EXPECT_THAT(run.output, Not(HasSubstr("not reached: ddlm::JobServiceImpl::Admit")));
}

TEST(ReachedFunctionsTest, ANameKeepsItsInnerSpacesAndAnUnsymbolizedReportSaysSo) {
  const ScriptRun spaced =
      Reached("COVERED_FUNC: hits: 1 edges: 1/1 ddlm::Box<int, long>::Get() /proc/self/cwd/common/base/box.h:3\n",
              "  ddlm::Box<int, long>::Get  \n");
  EXPECT_EQ(spaced.code, 0) << spaced.output;
  EXPECT_EQ(spaced.output, "reached 1 of 1 ddlm functions, 1 of 1 required\n");
  const ScriptRun unsymbolized = Reached("COVERED_FUNC: hits: 1 edges: 1/1 ?? ??:0\n", "ddlm::JobServiceImpl::Admit\n");
  EXPECT_EQ(unsymbolized.code, 1) << unsymbolized.output;
  EXPECT_THAT(unsymbolized.output, HasSubstr("was it symbolized"));
}

TEST(ReachedFunctionsTest, ALogWithoutACoverageReportFails) {
  const ScriptRun run = Reached("#1234\tDONE   cov: 10 ft: 20\n", "ddlm::JobServiceImpl::Admit\n");
  EXPECT_EQ(run.code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("no coverage report"));
}

}  // namespace
}  // namespace ddlm
