// End to end under Slurm: configs/slurm/ddlm.sbatch submitted with sbatch to a real,
// single-host Slurm, as a user would run it —
//   sbatch -N 1 --ntasks=2 configs/slurm/ddlm.sbatch configs/quickstart.textproto
// — must start a coordinator and two workers (one per task), run the quickstart to
// SUCCEEDED, and end COMPLETED (exit 0).
//
// Slurm is started by tests/slurm/local_slurm.sh in the test's temp dir (its own munged,
// slurmctld and slurmd, a generated slurm.conf, free ports) and stopped, its jobs and
// every process they left included, even when an assertion fails. Needs root and
// Debian's slurmctld, slurmd, slurm-client and munge; without them the test is skipped,
// saying why. There is no accounting daemon: the job's state comes from squeue while it
// runs and from `scontrol show job` once it has ended.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/file_io.h"
#include "common/base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/command.h"

namespace ddlm {
namespace {

using ::ddlm::testing::Command;
using ::ddlm::testing::CommandResult;
using ::ddlm::testing::Describe;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;

constexpr char kBash[] = "/bin/bash";
constexpr char kEnv[] = "/usr/bin/env";
constexpr char kStdbuf[] = "/usr/bin/stdbuf";
constexpr char kSbatch[] = "/usr/bin/sbatch";
constexpr char kSqueue[] = "/usr/bin/squeue";
constexpr char kScontrol[] = "/usr/bin/scontrol";
constexpr char kLocalSlurm[] = "tests/slurm/local_slurm.sh";
// local_slurm.sh's exit code for "cannot run here" (not root, a package missing).
constexpr int kCannotRun = 3;
// The quickstart (4 epochs, 2 workers) takes under a minute on the 2-core development
// machine; past this the job is taken as hung, and the test fails with its output.
constexpr auto kJobDeadline = std::chrono::minutes(10);

// Slurm job states after which nothing more happens to a job.
bool IsFinal(const std::string& state) {
  for (const char* final_state : {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                                  "DEADLINE", "OUT_OF_MEMORY"}) {
    if (state == final_state) return true;
  }
  return false;
}

// The command lines of running processes that contain any of `needles`.
std::vector<std::string> ProcessesMentioning(const std::vector<std::string>& needles) {
  std::vector<std::string> found;
  for (const std::string& pid : ListDirectory("/proc")) {
    if (pid.empty() || !absl::ascii_isdigit(pid[0])) continue;
    absl::StatusOr<std::string> cmdline = ReadFile("/proc/" + pid + "/cmdline");
    if (!cmdline.ok()) continue;  // It ended meanwhile.
    std::string line = *cmdline;
    std::replace(line.begin(), line.end(), '\0', ' ');
    for (const std::string& needle : needles) {
      if (absl::StrContains(line, needle)) {
        found.push_back(pid + ": " + line);
        break;
      }
    }
  }
  return found;
}

std::string Cwd() {
  char buffer[4096];
  return getcwd(buffer, sizeof(buffer)) ? buffer : ".";
}

std::string FileOrNote(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? *text : absl::StrCat("(", text.status().ToString(), ")\n");
}

// "KEY=VALUE" of `scontrol show job -o` (one line of space-separated fields).
std::string Field(const std::string& scontrol, const std::string& key) {
  for (absl::string_view field : absl::StrSplit(scontrol, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    if (absl::StartsWith(field, key + "=")) return std::string(field.substr(key.size() + 1));
  }
  return "";
}

class SlurmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "a local Slurm needs root (SlurmUser=root); running as uid " << geteuid();
    for (const char* tool : {kBash, kEnv, kStdbuf, kSbatch, kSqueue, kScontrol}) {
      if (access(tool, X_OK) != 0) {
        GTEST_SKIP() << tool << " is missing (apt-get install slurmctld slurmd slurm-client munge)";
      }
    }
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = tmp != nullptr ? tmp : "/tmp";
    slurm_dir_ = dir_ + "/slurm";
    slurm_conf_ = slurm_dir_ + "/etc/slurm.conf";
    const std::vector<std::string> start = {kBash, kLocalSlurm, "start", slurm_dir_};
    const CommandResult r = Command(start);
    if (r.code == kCannotRun) GTEST_SKIP() << "Slurm cannot run here: " << r.output;
    started_ = true;  // Even half started: TearDown stops what there is.
    ASSERT_EQ(r.code, 0) << Describe(start, r);
  }

  void TearDown() override {
    if (!started_) return;
    const std::vector<std::string> stop = {kBash, kLocalSlurm, "stop", slurm_dir_};
    const CommandResult r = Command(stop);
    EXPECT_EQ(r.code, 0) << Describe(stop, r);
  }

  // `env SLURM_CONF=... [VAR=VALUE...] ARGV...`: a Slurm client of this test's cluster.
  std::vector<std::string> WithSlurm(const std::vector<std::string>& argv,
                                     const std::vector<std::string>& env = {}) const {
    std::vector<std::string> full = {kEnv, "SLURM_CONF=" + slurm_conf_};
    full.insert(full.end(), env.begin(), env.end());
    full.insert(full.end(), argv.begin(), argv.end());
    return full;
  }

  // Follows the job's state as squeue reports it (once a second, line-buffered) until it
  // is final, the job is held (Slurm holds a job it could not launch), or `kJobDeadline`
  // passes. Returns the last state seen; `reason` gets squeue's reason with it.
  std::string FollowJob(const std::string& job_id, std::string* reason) {
    Subprocess squeue(WithSlurm({kStdbuf, "-oL", kSqueue, "--iterate=1", "--jobs=" + job_id, "--noheader",
                                 "--states=all", "--format=state=%T reason=%r"}));
    const auto deadline = std::chrono::steady_clock::now() + kJobDeadline;
    std::string state, line;
    while (!IsFinal(state) && !absl::StrContains(absl::AsciiStrToLower(*reason), "held")) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !squeue.WaitForLine("state=", &line, left)) break;
      const std::string fields = line.substr(line.find("state="));
      state = fields.substr(6, fields.find(' ') - 6);
      const size_t at = fields.find(" reason=");
      *reason = at == std::string::npos ? "" : std::string(absl::StripAsciiWhitespace(fields.substr(at + 8)));
    }
    squeue.Stop();
    return state;
  }

  // What to read when the job went wrong: its output, the ddlm processes' logs and the
  // Slurm daemons'.
  std::string Diagnostics(const std::string& output_file, const std::string& state_dir) const {
    std::string out = absl::StrCat("--- ", output_file, ":\n", FileOrNote(output_file));
    for (const std::string& log :
         {state_dir + "/logs/coordinator.log", state_dir + "/logs/worker-0.log", state_dir + "/logs/worker-1.log",
          slurm_dir_ + "/log/slurmctld.log", slurm_dir_ + "/log/slurmd.log"}) {
      absl::StrAppend(&out, "--- ", log, ":\n", FileOrNote(log));
    }
    return out;
  }

  std::string dir_;         // The test's temp dir.
  std::string slurm_dir_;   // local_slurm.sh's DIR.
  std::string slurm_conf_;  // Its slurm.conf.
  bool started_ = false;
};

TEST_F(SlurmTest, SbatchRunsTheQuickstartOnTwoTasks) {
  // As from the repository root: the job's working directory is the runfiles tree, which
  // holds the configs, the corpus and the binaries laid out as in bazel-bin. Everything
  // the job writes goes to the temp dir.
  const std::string output_file = dir_ + "/ddlm-%j.out";
  const std::string state_dir = dir_ + "/ddlm_state";
  const std::string model = dir_ + "/quickstart.pt";
  const std::vector<std::string> sbatch =
      WithSlurm({kSbatch, "--parsable", "-N", "1", "--ntasks=2", "--output=" + output_file, "configs/slurm/ddlm.sbatch",
                 "configs/quickstart.textproto"},
                {"DDLM_BIN_DIR=" + Cwd(), "DDLM_STATE_DIR=" + state_dir, "DDLM_SAVE=" + model});
  const auto submitted = std::chrono::steady_clock::now();
  const CommandResult r = Command(sbatch);
  ASSERT_EQ(r.code, 0) << Describe(sbatch, r);
  // --parsable: "JOBID" or "JOBID;CLUSTER", on the last line (warnings may come first).
  std::vector<std::string> lines = absl::StrSplit(r.output, '\n', absl::SkipWhitespace());
  ASSERT_FALSE(lines.empty()) << Describe(sbatch, r);
  const std::string job_id(absl::StripAsciiWhitespace(lines.back().substr(0, lines.back().find(';'))));
  ASSERT_FALSE(job_id.empty()) << Describe(sbatch, r);
  const std::string output = dir_ + "/ddlm-" + job_id + ".out";

  std::string reason;
  const std::string followed = FollowJob(job_id, &reason);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - submitted).count();
  std::printf("Slurm job %s: %s, %.1f s from sbatch\n", job_id.c_str(), followed.c_str(), seconds);
  ASSERT_TRUE(IsFinal(followed)) << "job " << job_id << " is " << followed << " (" << reason << ") after " << seconds
                                 << " s\n"
                                 << Diagnostics(output, state_dir);

  // Slurm's own word on it: the batch script exited 0 (the ddlm job SUCCEEDED).
  const std::vector<std::string> show = WithSlurm({kScontrol, "show", "job", "-o", job_id});
  const CommandResult shown = Command(show);
  ASSERT_EQ(shown.code, 0) << Describe(show, shown);
  EXPECT_EQ(Field(shown.output, "JobState"), "COMPLETED") << shown.output << Diagnostics(output, state_dir);
  EXPECT_EQ(Field(shown.output, "ExitCode"), "0:0") << shown.output;
  EXPECT_EQ(Field(shown.output, "NumTasks"), "2") << shown.output;

  // The job's output is ddlm's live log: progress with perplexity, every epoch's
  // validation, the test result, and the end state.
  const std::string text = FileOrNote(output);
  EXPECT_THAT(text, HasSubstr("RUNNING: attempt 1 on 2 worker(s)")) << text;
  EXPECT_THAT(text, ContainsRegex("\\| epoch +1 \\| +40/ +[0-9]+ batches \\|.*\\| ppl +[0-9.]+")) << text;
  for (int epoch = 1; epoch <= 4; ++epoch) {
    EXPECT_THAT(text, ContainsRegex(absl::StrCat("\\| end of epoch +", epoch, " \\|.*valid ppl +[0-9.]+"))) << text;
  }
  EXPECT_THAT(text, ContainsRegex("\\| End of training \\| test loss +[0-9.]+ \\| test ppl +[0-9.]+")) << text;
  EXPECT_THAT(text, HasSubstr("| job SUCCEEDED")) << text;
  EXPECT_THAT(text, HasSubstr("ended SUCCEEDED")) << text;
  EXPECT_THAT(text, HasSubstr("best model saved to " + model)) << text;

  // Secure by default: TLS and tokens, secrets readable by their owner only.
  EXPECT_THAT(FileOrNote(state_dir + "/logs/coordinator.log"), HasSubstr("TLS, tokens required"));
  struct stat secrets, tokens;
  ASSERT_EQ(stat((state_dir + "/secrets").c_str(), &secrets), 0);
  EXPECT_EQ(secrets.st_mode & 0777, 0700u);
  ASSERT_EQ(stat((state_dir + "/secrets/tokens").c_str(), &tokens), 0);
  EXPECT_EQ(tokens.st_mode & 0777, 0600u);
  // One worker per task, each with its own id, both registered.
  for (int task = 0; task < 2; ++task) {
    const std::string log = FileOrNote(absl::StrCat(state_dir, "/logs/worker-", task, ".log"));
    EXPECT_THAT(log, HasSubstr(absl::StrCat("ddlm_worker slurm-", job_id, "-", task, " registered"))) << log;
  }
  // The best model was fetched through the coordinator, whole.
  absl::StatusOr<std::string> saved = ReadFile(model);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->substr(0, 8), "DDLMCKPT");

  // Everything the job started is gone once Slurm says it ended. (The workers are sent
  // SIGTERM and shut down; their last log line may be lost when the step ends, so that
  // is not checked here.)
  const std::vector<std::string> left =
      ProcessesMentioning({"--state_dir=" + state_dir, absl::StrCat("--worker_id=slurm-", job_id, "-")});
  EXPECT_TRUE(left.empty()) << "left running: " << absl::StrJoin(left, "\n");
}

}  // namespace
}  // namespace ddlm
