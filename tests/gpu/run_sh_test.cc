// The GPU check's driver (tests/gpu/run.sh) on a fake bundle and a fake python, so that
// the paths that decide its one run on the accelerator machine run here too: a torch of
// another version or (on a GPU) another CUDA stops the command at once; the command's
// budget (DDLM_GPU_CHECK_BUDGET_S) cuts the steps' limits and fails a step it has no
// time for unrun; $OUT gets the summary and the logs, never a half-written archive.
// Only the machine step runs (--only machine): the fake binaries are shell scripts.

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "common/testing/shell.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

using Result = ::ddlm::ShellResult;
using ::ddlm::ShellQuote;

Result Shell(const std::string& script) { return ::ddlm::RunBash(script); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// What the fake python reports for `import torch`.
struct FakeTorch {
  std::string version = "2.11.0+cu130";
  std::string cuda = "13.0";
  std::string cuda_available = "True";
};

class RunShTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    root_ = std::string(tmp) + "/" + name;
    bundle_ = root_ + "/bundle";
    out_ = root_ + "/out";
    work_ = root_ + "/work";
    // A bundle as bundle.sh lays it out, its binaries shell scripts (ldd finds no
    // libraries in them: the machine step then fails its library check, not aborts).
    const Result made =
        Shell("set -e; rm -rf " + ShellQuote(root_) + "; mkdir -p " + ShellQuote(bundle_ + "/bin/worker") + " " +
              ShellQuote(bundle_ + "/lib") + " " + ShellQuote(root_ + "/site/torch/lib") +
              "; printf '#!/bin/sh\\nexit 0\\n' > " + ShellQuote(bundle_ + "/bin/worker/ddlm_worker") + "; chmod +x " +
              ShellQuote(bundle_ + "/bin/worker/ddlm_worker"));
    ASSERT_EQ(made.exit_code, 0) << made.out;
    WriteManifest("2.11.0", "13.0");
  }

  void WriteManifest(const std::string& torch_version, const std::string& torch_cuda) {
    std::ofstream(bundle_ + "/MANIFEST") << "torch_version=" << torch_version << "\ntorch_cuda=" << torch_cuda
                                         << "\nglibc_needed=2.34\nglibcxx_needed=3.4.30\nbuilt_from=test\n";
  }

  // A python that answers run.sh's two questions (torch's facts; its own version).
  std::string FakePython(const FakeTorch& torch) {
    const std::string path = root_ + "/python3";
    std::ofstream(path) << "#!/bin/bash\n"
                        << "case \"$*\" in\n"
                        << "  *'import os, torch'*) printf '%s\\n' '" << root_ << "/site/torch' '" << torch.version
                        << "' '" << torch.cuda << "' '" << torch.cuda_available << "' 'Fake GPU' ;;\n"
                        << "  *'import sys'*) echo 3.12.3 ;;\n"
                        << "  *) exit 1 ;;\n"
                        << "esac\n";
    ::chmod(path.c_str(), 0755);
    return path;
  }

  // `run.sh check --only machine` on the fake bundle; `env`: extra NAME=VALUE words.
  Result Check(const FakeTorch& torch, const std::string& device, const std::string& env = "") {
    return Shell("env PYTHON=" + ShellQuote(FakePython(torch)) + " DDLM_GPU_CHECK_DEVICE=" + ShellQuote(device) +
                 " DDLM_GPU_CHECK_DIR=" + ShellQuote(work_) + " OUT=" + ShellQuote(out_) + " " + env + " bash " +
                 ShellQuote(::ddlm::RunfilePath("tests/gpu/run.sh")) + " check --bundle " + ShellQuote(bundle_) +
                 " --only machine");
  }

  std::string Summary() { return ReadFile(out_ + "/summary.txt"); }

  std::string root_, bundle_, out_, work_;
};

TEST_F(RunShTest, AnotherTorchVersionStopsTheCommandAtOnce) {
  FakeTorch torch;
  torch.version = "2.10.0+cu130";
  const Result run = Check(torch, "cuda:0");
  EXPECT_EQ(run.exit_code, 1) << run.out;
  const std::string summary = Summary();
  EXPECT_THAT(summary, HasSubstr("step machine: FAIL"));
  EXPECT_THAT(summary, HasSubstr("aborted: ABORT: torch 2.10.0+cu130 here, the bundle was built against '2.11.0'"));
  EXPECT_THAT(summary, HasSubstr("0 passed, 1 failed"));
}

TEST_F(RunShTest, AnotherCudaStopsTheCommandOnAGpu) {
  FakeTorch torch;
  torch.version = "2.11.0+cu126";
  torch.cuda = "12.6";
  const Result run = Check(torch, "cuda:0");
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_THAT(Summary(), HasSubstr("ABORT: torch here is built for CUDA 12.6, the bundle's for '13.0'"));
}

TEST_F(RunShTest, TheCudaVersionIsNotCheckedInACpuDryRun) {
  FakeTorch torch;
  torch.version = "2.11.0+cu126";
  torch.cuda = "12.6";
  torch.cuda_available = "False";
  const Result run = Check(torch, "cpu");
  // The machine step runs to its end: it fails the fake binaries' library check, and
  // nothing aborts.
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_THAT(run.out, HasSubstr("torch 2.11.0+cu126 at " + root_ + "/site/torch"));
  EXPECT_THAT(run.out, HasSubstr("FAIL machine: LibTorch/cudart/NCCL not all from"));
  EXPECT_THAT(Summary(), Not(HasSubstr("ABORT")));
}

TEST_F(RunShTest, AGpuThatTorchCannotSeeFailsTheMachineStep) {
  FakeTorch torch;
  torch.cuda_available = "False";
  const Result run = Check(torch, "cuda:0");
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_THAT(run.out, HasSubstr("FAIL machine: torch sees no CUDA device (device cuda:0)"));
}

TEST_F(RunShTest, WithoutABudgetAStepHasItsOwnLimit) {
  const Result run = Check(FakeTorch(), "cuda:0");
  EXPECT_THAT(run.out, HasSubstr("== machine (limit 60 s)"));
}

TEST_F(RunShTest, TheBudgetCutsTheStepsLimits) {
  const Result run = Check(FakeTorch(), "cuda:0", "DDLM_GPU_CHECK_BUDGET_S=40");
  // 40 s less the 5 s kill grace, less the second the start may have taken.
  EXPECT_THAT(run.out, ContainsRegex("== machine \\(limit 3[45] s\\)"));
  EXPECT_THAT(run.out, Not(HasSubstr("not run")));
}

TEST_F(RunShTest, AStepWithNoBudgetLeftFailsUnrun) {
  const Result run = Check(FakeTorch(), "cuda:0", "DDLM_GPU_CHECK_BUDGET_S=12");
  EXPECT_EQ(run.exit_code, 1) << run.out;
  const std::string summary = Summary();
  EXPECT_THAT(summary, HasSubstr("step machine: FAIL in 0 s (not run: DDLM_GPU_CHECK_BUDGET_S=12 is spent)"));
  EXPECT_THAT(summary, HasSubstr("0 passed, 1 failed"));
  // Nothing ran, so no step log: $OUT still gets an archive of what there is, and no
  // half-written one.
  EXPECT_EQ(Shell("tar -tzf " + ShellQuote(out_ + "/logs.tar.gz")).exit_code, 0);
  const Result left = Shell("ls -A " + ShellQuote(out_));
  EXPECT_THAT(left.out, Not(HasSubstr("partial"))) << left.out;
}

TEST_F(RunShTest, ABudgetThatIsNotANumberIsRefused) {
  const Result run = Check(FakeTorch(), "cuda:0", "DDLM_GPU_CHECK_BUDGET_S=7m");
  EXPECT_EQ(run.exit_code, 2) << run.out;
  EXPECT_THAT(run.out, HasSubstr("DDLM_GPU_CHECK_BUDGET_S must be a whole number of seconds, not '7m'"));
}

TEST_F(RunShTest, OutGetsTheSummaryAndTheLogs) {
  FakeTorch torch;
  torch.version = "2.10.0+cu130";
  Check(torch, "cuda:0");
  EXPECT_THAT(Summary(), HasSubstr("step machine:"));
  const Result listed = Shell("tar -tzf " + ShellQuote(out_ + "/logs.tar.gz"));
  EXPECT_EQ(listed.exit_code, 0) << listed.out;
  EXPECT_THAT(listed.out, HasSubstr("step-machine.log"));
}

}  // namespace
