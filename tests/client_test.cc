// End to end: the `ddlm` command-line client against a real coordinator and workers,
// and `ddlm launch`, the README's main job, on a small config.

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <regex>

#include "common/base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"

namespace ddlm {
namespace {

using ::ddlm::RunBinary;
using ::ddlm::testing::Cluster;
using ::testing::HasSubstr;

constexpr char kClient[] = "coordinator/cli/ddlm";
constexpr char kPlain[] = "--insecure";  // The Cluster serves plain text.

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

std::string WriteConfig(const std::string& name) {
  const std::string path = TempDir() + "/" + name + ".textproto";
  std::ofstream(path) << "name: \"" << name << "\"\n"
                      << "data { path: \"configs/quickstart_data\" batch_size: 10 }\n"
                      << "model { type: GRU emsize: 24 nhid: 24 }\n"
                      << "schedule { epochs: 2 log_interval: 10 max_batches_per_epoch: 30 threads: 1 }\n"
                      << "checkpoint { path: \"" << TempDir() << "/" << name << ".pt\" }\n"
                      << "num_workers: 2\n";
  return path;
}

TEST(ClientTest, SubmitWatchListStatusCheckpointsGenerate) {
  Cluster cluster(TempDir() + "/client_state");
  ASSERT_TRUE(cluster.Start());
  ASSERT_TRUE(cluster.AddWorker("w0"));
  ASSERT_TRUE(cluster.AddWorker("w1"));
  const std::string at = "--coordinator=" + cluster.address();
  std::string out;
  ASSERT_EQ(RunBinary({kClient, "submit", "--config=" + WriteConfig("cli"), "--watch", at, kPlain}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("submitted job-1"));
  EXPECT_THAT(out, HasSubstr("| end of epoch   2 |"));
  EXPECT_THAT(out, HasSubstr("| End of training | test loss"));
  EXPECT_THAT(out, HasSubstr("| job SUCCEEDED"));

  ASSERT_EQ(RunBinary({kClient, "list", at, kPlain}, &out), 0) << out;
  EXPECT_THAT(out, ::testing::ContainsRegex("job-1 +SUCCEEDED +cli"));
  ASSERT_EQ(RunBinary({kClient, "status", "job-1", "--json", at, kPlain}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("\"state\": \"SUCCEEDED\""));
  ASSERT_EQ(RunBinary({kClient, "checkpoints", "job-1", at, kPlain}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("id: \"e0003-s00000060\""));
  ASSERT_EQ(RunBinary({kClient, "generate", "job-1", "--words=25", at, kPlain}, &out), 0) << out;
  // 25 words, as generate.py writes them: a space after each, a newline after every 20th.
  EXPECT_EQ(std::count(out.begin(), out.end(), ' '), 24) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;  // The 20th word's, and the last line's.
  // A kept checkpoint, fetched through the API, is a whole ddlm checkpoint file.
  const std::string fetched = TempDir() + "/fetched.ckpt";
  ASSERT_EQ(
      RunBinary({kClient, "fetch", "job-1", "--checkpoint=e0003-s00000060", "--out=" + fetched, at, kPlain}, &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("saved to " + fetched));
  {
    std::ifstream file(fetched, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.substr(0, 8), "DDLMCKPT");
    EXPECT_GT(bytes.size(), 1000u);
  }
  EXPECT_EQ(RunBinary({kClient, "fetch", "job-1", "--checkpoint=e9999", "--out=" + fetched, at, kPlain}, &out), 1);
  EXPECT_THAT(out, HasSubstr("NOT_FOUND"));
  EXPECT_EQ(RunBinary({kClient, "fetch", "job-1", at, kPlain}, &out), 2);
  ASSERT_EQ(RunBinary({kClient, "workers", at, kPlain}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("worker_id: \"w1\""));

  // Errors: the coordinator's code and message, and exit codes 1 (error) / 2 (usage).
  EXPECT_EQ(RunBinary({kClient, "status", "job-7", at, kPlain}, &out), 1);
  EXPECT_THAT(out, HasSubstr("NOT_FOUND"));
  EXPECT_EQ(RunBinary({kClient, "cancel", "job-1", at, kPlain}, &out), 1);
  EXPECT_THAT(out, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_EQ(RunBinary({kClient, "frobnicate", at, kPlain}, &out), 2);
  // Neither TLS nor --insecure: refused before connecting, saying what to give.
  EXPECT_EQ(RunBinary({kClient, "list", at}, &out), 1);
  EXPECT_THAT(out, HasSubstr("no --ca_cert"));
  EXPECT_EQ(RunBinary({kClient, "status", at, kPlain}, &out), 2);
  EXPECT_EQ(RunBinary({kClient, "resume", "job-1", "--epochs=-1", at, kPlain}, &out), 2);
  EXPECT_THAT(out, HasSubstr("--epochs must be >= 1"));

  // Resume to a third epoch, from the CLI.
  ASSERT_EQ(RunBinary({kClient, "resume", "job-1", "--epochs=3", "--watch", at, kPlain}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("| end of epoch   3 |"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("| end of epoch   2 |")));
}

TEST(ClientTest, LaunchRunsAJobOnLocalWorkersAndSavesTheBestModel) {
  std::string out;
  const std::string state = TempDir() + "/launch_state";
  ASSERT_EQ(RunBinary({kClient, "launch", "--config=" + WriteConfig("launched"), "--workers=2", "--state_dir=" + state},
                      &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("launched 2 worker(s)"));
  EXPECT_THAT(out, HasSubstr("| job SUCCEEDED"));
  EXPECT_THAT(out, HasSubstr("saved to " + TempDir() + "/launched.pt"));
  EXPECT_TRUE(std::ifstream(TempDir() + "/launched.pt").good());
  EXPECT_TRUE(std::ifstream(state + "/logs/worker-1.log").good());
  // Secure by default: the coordinator served TLS and required tokens, which launch made.
  EXPECT_THAT(out, HasSubstr("TLS and tokens on"));
  std::ifstream log(state + "/logs/coordinator.log");
  const std::string coordinator_log((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_THAT(coordinator_log, HasSubstr("TLS, tokens required"));
  for (const char* secret : {"ca.key", "server.key", "tokens", "admin.token", "worker.token"}) {
    struct stat st;
    ASSERT_EQ(::stat((state + "/secrets/" + secret).c_str(), &st), 0) << secret;
    EXPECT_EQ(st.st_mode & 0077, 0u) << secret << " is readable by others";
  }
}

// The model queries from the CLI on a job's checkpoint: scoring the job's own test split
// gives the test perplexity the job reported (one worker, eval_batch_size 1: the
// evaluation's one stream, which ScoreText reads the same way); generation from a prompt,
// streamed; the attention and log-probability maps drawn.
TEST(ClientTest, ScoreAttentionLogprobsAndAPromptFromTheCli) {
  Cluster cluster(TempDir() + "/query_state");
  ASSERT_TRUE(cluster.Start());
  ASSERT_TRUE(cluster.AddWorker("w0"));
  const std::string at = "--coordinator=" + cluster.address();
  const std::string config = TempDir() + "/tf.textproto";
  std::ofstream(config) << "name: \"tf\"\n"
                        << "data { path: \"configs/quickstart_data\" batch_size: 10 eval_batch_size: 1 bptt: 12 }\n"
                        << "model { type: TRANSFORMER emsize: 16 nhid: 16 nlayers: 2 nhead: 2 }\n"
                        << "schedule { epochs: 1 log_interval: 10 max_batches_per_epoch: 20 threads: 1 }\n"
                        << "num_workers: 1\n";
  std::string out;
  ASSERT_EQ(RunBinary({kClient, "submit", "--config=" + config, "--watch", at, kPlain}, &out), 0) << out;
  ASSERT_THAT(out, HasSubstr("| job SUCCEEDED"));
  ASSERT_EQ(RunBinary({kClient, "status", "job-1", "--json", at, kPlain}, &out), 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("\"test_ppl\": ([0-9.e+-]+)"))) << out;
  const double reported = std::stod(m[1]);

  ASSERT_EQ(
      RunBinary({kClient, "score", "job-1", "--file=configs/quickstart_data/test.txt", "--json", at, kPlain}, &out), 0)
      << out;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("\"perplexity\":([0-9.e+-]+)"))) << out;
  EXPECT_NEAR(std::stod(m[1]), reported, 1e-6 * reported) << out;
  // Usage: exactly one of --text and --file; logprobs draws text only.
  EXPECT_EQ(RunBinary({kClient, "score", "job-1", at, kPlain}, &out), 2);
  EXPECT_THAT(out, HasSubstr("one of --text TEXT or --file PATH"));
  EXPECT_EQ(RunBinary({kClient, "score", "job-1", "--text=the", "--file=x", at, kPlain}, &out), 2);
  EXPECT_EQ(RunBinary({kClient, "logprobs", "job-1", "--file=x", "--out=/dev/null", at, kPlain}, &out), 2);
  // A file outside the data roots is refused.
  EXPECT_EQ(RunBinary({kClient, "score", "job-1", "--file=/etc/passwd", at, kPlain}, &out), 1);
  EXPECT_THAT(out, HasSubstr("PERMISSION_DENIED"));

  ASSERT_EQ(RunBinary({kClient, "score", "job-1", "--text=the wind caused the rainfall", "--top=3", at, kPlain}, &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("perplexity"));
  EXPECT_THAT(out, HasSubstr("(context)"));

  ASSERT_EQ(RunBinary({kClient, "generate", "job-1", "--prompt=the storm struck", "--words=30", "--stream",
                       "--top_p=0.9", at, kPlain},
                      &out),
            0)
      << out;
  ASSERT_EQ(
      RunBinary({kClient, "generate", "job-1", "--prompt=the storm struck", "--words=30", "--top_p=0.9", at, kPlain},
                &out),
      0);
  std::string streamed;
  ASSERT_EQ(RunBinary({kClient, "generate", "job-1", "--prompt=the storm struck", "--words=30", "--stream",
                       "--top_p=0.9", at, kPlain},
                      &streamed),
            0);
  EXPECT_EQ(streamed, out);  // The same words, streamed or not.
  EXPECT_EQ(std::count(out.begin(), out.end(), ' ') + std::count(out.begin(), out.end(), '\n'), 31) << out;

  for (const std::string& png : {TempDir() + "/attention.png", TempDir() + "/logprobs.png"}) {
    const bool attention = png.find("attention") != std::string::npos;
    std::vector<std::string> argv = {
        kClient, attention ? "attention" : "logprobs", "job-1", "--text=the storm struck the coast", "--out=" + png, at,
        kPlain};
    if (attention) argv.insert(argv.end(), {"--layer=1", "--head=1"});
    ASSERT_EQ(RunBinary(argv, &out), 0) << out;
    std::ifstream file(png, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.substr(1, 3), "PNG") << png;
  }
  EXPECT_EQ(
      RunBinary({kClient, "attention", "job-1", "--text=the storm", "--layer=2", "--out=/dev/null", at, kPlain}, &out),
      1);
  EXPECT_THAT(out, HasSubstr("layers: the model has layers 0..1"));
}

}  // namespace
}  // namespace ddlm
