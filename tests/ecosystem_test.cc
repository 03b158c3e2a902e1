// ddlm among the tools its users already run, end to end on loopback with real
// processes: TensorBoard's own reader reads the coordinator's event files back, Debian's
// Prometheus scrapes its /metrics, `ddlm watch` draws its live status line in a terminal
// (tmux), and `ddlm plot` draws a job's curves with gnuplot. Each tool comes from
// ./setup.sh; a test skips, saying which, only when its tool is not installed.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/base/file_io.h"
#include "common/base/subprocess.h"
#include "coordinator/tensorboard/testing_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"

namespace ddlm {
namespace {

using ::ddlm::testing::Cluster;
using ::ddlm::testing::FinalState;
using ::ddlm::testing::SmallJob;
using ::testing::HasSubstr;

std::string TestDir(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

bool Executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// The Python with the tensorboard package that ./setup.sh installs.
std::string ToolsPython() {
  const char* env = std::getenv("DDLM_TOOLS_PYTHON");
  return env != nullptr && *env != '\0' ? env : "/opt/ddlm/tools/bin/python3";
}

// GET http://127.0.0.1:port/path; the body, or "" on any failure.
std::string HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A server that stops answering fails the call, not the whole test by its timeout.
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[8192];
      for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) > 0;) reply.append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  const size_t body = reply.find("\r\n\r\n");
  return body == std::string::npos ? "" : reply.substr(body + 4);
}

// A port that was free a moment ago (for a program that cannot take port 0: its caller
// tries again if something took it meanwhile).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

int TfRecordsIn(const std::string& run_dir) {
  int records = 0;
  for (const std::string& name : ListDirectory(run_dir)) {
    absl::StatusOr<std::vector<tensorboard::Event>> events = ReadEventFile(run_dir + "/" + name);
    if (events.ok()) records += static_cast<int>(events->size());
  }
  return records;
}

TEST(EcosystemTest, TensorBoardReadsEachJobsScalarsBack) {
  const std::string python = ToolsPython();
  if (!Executable(python)) GTEST_SKIP() << python << " not found: ./setup.sh installs the tensorboard package there";
  const std::string state_dir = TestDir("tensorboard");
  Cluster cluster(state_dir);
  ASSERT_TRUE(cluster.Start());
  ASSERT_TRUE(cluster.AddWorker("w0"));
  ASSERT_TRUE(cluster.AddWorker("w1"));
  absl::StatusOr<Job> job = cluster.Submit(SmallJob(2, 2));
  ASSERT_TRUE(job.ok()) << job.status();
  const std::vector<JobEvent> events = cluster.Watch(job->id());
  ASSERT_EQ(FinalState(events), SUCCEEDED);

  // What the job's events should become (job_scalars.h), by "tag step".
  std::map<std::string, double> want;
  int64_t batches_per_epoch = 0, last_step = 0;
  int points = 0;
  for (const JobEvent& e : events) {
    if (e.has_training()) {
      const TrainingMetrics& m = e.training();
      batches_per_epoch = m.num_batches();
      last_step = (m.epoch() - 1) * m.num_batches() + m.batch() + 1;
      want[absl::StrCat("train/loss ", last_step)] = m.loss();
      want[absl::StrCat("train/ppl ", last_step)] = m.ppl();
      want[absl::StrCat("train/lr ", last_step)] = m.lr();
      want[absl::StrCat("train/tokens_per_second ", last_step)] = m.tokens_per_second();
      want[absl::StrCat("train/allreduce_ms_per_batch ", last_step)] = m.allreduce_ms_per_batch();
      EXPECT_GT(m.allreduce_ms_per_batch(), 0) << "two workers all-reduce every batch";
      ++points;
    } else if (e.has_epoch()) {
      last_step = e.epoch().epoch() * batches_per_epoch;
      want[absl::StrCat("val/ppl ", last_step)] = e.epoch().val_ppl();
      ++points;
    } else if (e.has_test()) {
      want[absl::StrCat("test/ppl ", last_step)] = e.test().test_ppl();
      ++points;
    }
  }
  ASSERT_GT(points, 4);

  // The exporter writes off the coordinator's lock: wait (on the file, event by event
  // as written) until every point is there, then read it with TensorBoard's reader.
  const std::string run_dir = absl::StrCat(state_dir, "/tensorboard/", job->id());
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (TfRecordsIn(run_dir) < points + 1 && absl::Now() < give_up) {
    cluster.Get(job->id());  // A round trip to the coordinator between reads.
  }
  ASSERT_EQ(TfRecordsIn(run_dir), points + 1);  // And the file_version record.

  std::string output;
  ASSERT_EQ(RunBinary({python, "tests/tensorboard/read_scalars.py", run_dir}, &output), 0) << output;
  std::map<std::string, double> got;
  int records = -1;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() == 2 && f[0] == "records") {
      ASSERT_TRUE(absl::SimpleAtoi(f[1], &records));
    } else if (f.size() == 3) {
      double value = 0;
      ASSERT_TRUE(absl::SimpleAtod(f[2], &value)) << line;
      got[absl::StrCat(f[0], " ", f[1])] = value;
    }
  }
  EXPECT_EQ(records, points + 1);
  for (const auto& [key, value] : want) {
    ASSERT_TRUE(got.count(key)) << key << " missing from TensorBoard's reading:\n" << output;
    // TensorBoard keeps simple values as float32.
    EXPECT_EQ(got[key], static_cast<double>(static_cast<float>(value))) << key;
  }

  // `ddlm delete` takes the job's run with it.
  grpc::ClientContext context;
  DeleteJobRequest request;
  request.set_job_id(job->id());
  DeleteJobResponse response;
  ASSERT_TRUE(cluster.stub().DeleteJob(&context, request, &response).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!ListDirectory(run_dir).empty() && absl::Now() < deadline) cluster.Get(job->id());
  EXPECT_TRUE(ListDirectory(run_dir).empty()) << run_dir << " is still there";
}

TEST(EcosystemTest, PrometheusScrapesTheRunningJobsTokensPerSecond) {
  if (!Executable("/usr/bin/prometheus")) GTEST_SKIP() << "/usr/bin/prometheus not found: ./setup.sh installs it";
  const std::string dir = TestDir("prometheus");
  ::mkdir(dir.c_str(), 0755);
  Cluster cluster(dir + "/state", {"--metrics_port=0"});
  ASSERT_TRUE(cluster.Start());
  std::string line;
  ASSERT_TRUE(cluster.coordinator().WaitForLine("metrics on http://", &line)) << cluster.coordinator().output();
  int metrics_port = 0;
  {
    const std::string rest = line.substr(line.find("127.0.0.1:") + 10);
    ASSERT_TRUE(absl::SimpleAtoi(rest.substr(0, rest.find('/')), &metrics_port)) << line;
  }
  ASSERT_TRUE(cluster.AddWorker("w0"));
  ASSERT_TRUE(cluster.AddWorker("w1"));

  const std::string config = dir + "/prometheus.yml";
  ASSERT_TRUE(WriteFileAtomically(config, absl::StrCat("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                                                       "scrape_configs:\n  - job_name: ddlm\n    static_configs:\n"
                                                       "      - targets: ['127.0.0.1:",
                                                       metrics_port, "']\n"))
                  .ok());
  // Prometheus takes no port 0: a port free a moment ago, and another if something took
  // it meanwhile (Prometheus then exits saying so), up to 5 times.
  int prometheus_port = 0;
  std::unique_ptr<Subprocess> prometheus;
  for (int attempt = 0; attempt < 5 && prometheus == nullptr; ++attempt) {
    prometheus_port = FreePort();
    ASSERT_GT(prometheus_port, 0);
    auto started = std::make_unique<Subprocess>(std::vector<std::string>{
        "/usr/bin/prometheus", "--config.file=" + config, absl::StrCat("--storage.tsdb.path=", dir, "/tsdb-", attempt),
        absl::StrCat("--web.listen-address=127.0.0.1:", prometheus_port)});
    if (started->WaitForLine("Server is ready to receive web requests")) {
      prometheus = std::move(started);
    } else {
      ASSERT_THAT(started->output(), HasSubstr("address already in use")) << started->output();
    }
  }
  ASSERT_NE(prometheus, nullptr) << "no free port for Prometheus in 5 tries";

  // A job long enough to be scraped while it runs; each training event it reports is
  // the cue to ask Prometheus again.
  absl::StatusOr<Job> job = cluster.Submit(SmallJob(2, 40));
  ASSERT_TRUE(job.ok()) << job.status();
  std::string answer;
  double tokens_per_second = 0;
  std::vector<double> reported;  // By the job, in its training events.
  cluster.Watch(job->id(), [&](const JobEvent& e) {
    if (!e.has_training()) return false;
    reported.push_back(e.training().tokens_per_second());
    answer = HttpGet(prometheus_port, "/api/v1/query?query=ddlm_job_tokens_per_second");
    const std::string value_key = "\"value\":[";
    if (!absl::StrContains(answer, absl::StrCat("\"job_id\":\"", job->id(), "\"")) ||
        !absl::StrContains(answer, value_key)) {
      return false;
    }
    // "value":[1700000000.123,"5120.5"]
    const std::string rest = answer.substr(answer.find(value_key) + value_key.size());
    const size_t quote = rest.find('"');
    return quote != std::string::npos &&
           absl::SimpleAtod(rest.substr(quote + 1, rest.find('"', quote + 1) - quote - 1), &tokens_per_second) &&
           tokens_per_second > 0;
  });
  ASSERT_GT(tokens_per_second, 0) << "Prometheus answered: " << answer;
  // What Prometheus scraped is a figure the job reported (the gauge holds the latest
  // one at each scrape), not merely some positive number.
  bool reported_by_the_job = false;
  for (double r : reported) reported_by_the_job = reported_by_the_job || std::abs(r - tokens_per_second) <= 1e-4 * r;
  EXPECT_TRUE(reported_by_the_job) << tokens_per_second << " tokens/s is none of the " << reported.size()
                                   << " figures the job reported; Prometheus answered: " << answer;
  EXPECT_THAT(answer, HasSubstr("\"status\":\"success\""));
  // The rest of the page came through too: jobs by state and RPC latencies.
  const std::string running = HttpGet(prometheus_port, "/api/v1/query?query=ddlm_jobs%7Bstate%3D%22running%22%7D");
  EXPECT_THAT(running, HasSubstr("\"1\"]")) << running;
  const std::string rpcs =
      HttpGet(prometheus_port,
              "/api/v1/query?query=ddlm_rpc_requests_total%7Bmethod%3D%22%2Fddlm.WorkerService%2FHeartbeat%22%7D");
  EXPECT_THAT(rpcs, HasSubstr("\"code\":\"OK\"")) << rpcs;

  grpc::ClientContext context;
  CancelJobRequest cancel;
  cancel.set_job_id(job->id());
  Job cancelled;
  EXPECT_TRUE(cluster.stub().CancelJob(&context, cancel, &cancelled).ok());
  prometheus->Stop();
}

// `ddlm watch` in a real terminal (a tmux pane): the live status line while the job
// trains, the events' own lines above it, and a clean end.
TEST(EcosystemTest, WatchShowsALiveStatusLineInATerminal) {
  if (!Executable("/usr/bin/tmux")) GTEST_SKIP() << "/usr/bin/tmux not found: ./setup.sh installs it";
  const std::string dir = TestDir("tmux");
  ::mkdir(dir.c_str(), 0755);
  Cluster cluster(dir + "/state");
  ASSERT_TRUE(cluster.Start());
  ASSERT_TRUE(cluster.AddWorker("w0"));
  ASSERT_TRUE(cluster.AddWorker("w1"));
  absl::StatusOr<Job> job = cluster.Submit(SmallJob(2, 6));
  ASSERT_TRUE(job.ok()) << job.status();

  // A socket path must fit in 108 bytes, which the test's own directory may not.
  char socket_dir[] = "/tmp/ddlm-tmux-XXXXXX";
  ASSERT_NE(::mkdtemp(socket_dir), nullptr);
  const std::string socket = std::string(socket_dir) + "/s";
  char cwd[4096] = {};
  ASSERT_NE(::getcwd(cwd, sizeof(cwd)), nullptr);
  // `exec cat` keeps the pane (and what it shows) after ddlm exits.
  const std::string command =
      absl::StrCat("cd ", cwd, " && coordinator/cli/ddlm watch ", job->id(),
                   " --insecure --coordinator=", cluster.address(), "; echo \"watch exited $?\"; exec cat");
  auto tmux = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/tmux", "-S", socket});
    std::string output;
    const int code = RunBinary(args, &output);
    return code == 0 ? output : absl::StrCat("tmux failed (", code, "): ", output);
  };
  tmux({"new-session", "-d", "-x", "150", "-y", "40", "sh", "-c", command});
  struct KillServer {
    std::function<std::string(std::vector<std::string>)> tmux;
    std::string socket_dir;
    ~KillServer() {
      tmux({"kill-server"});
      (void)RemoveTree(socket_dir);
    }
  } kill_server{tmux, socket_dir};

  std::string pane;
  cluster.Watch(job->id(), [&](const JobEvent& e) {
    if (!e.has_training() || e.training().epoch() < 2) return false;
    pane = tmux({"capture-pane", "-p"});
    return absl::StrContains(pane, "ETA epoch") && absl::StrContains(pane, "end of epoch   1");
  });
  EXPECT_THAT(pane, HasSubstr("| end of epoch   1 |"));
  // The status line is the pane's last line with text, below the event lines.
  std::vector<std::string> lines = absl::StrSplit(pane, '\n', absl::SkipWhitespace());
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(),
              ::testing::MatchesRegex("epoch [0-9]+/6 \\[[#.]{20}\\] [0-9]+/[0-9]+ \\| [0-9]+ tok/s \\| "
                                      "loss [0-9.]+ \\| ppl [0-9.]+ \\| ETA epoch [0-9:]+, job [0-9:]+ *"))
      << pane;

  ASSERT_EQ(FinalState(cluster.Watch(job->id())), SUCCEEDED);
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (!absl::StrContains(pane, "watch exited") && absl::Now() < give_up) {
    cluster.Get(job->id());  // A round trip between looks at the pane.
    pane = tmux({"capture-pane", "-p"});
  }
  EXPECT_THAT(pane, HasSubstr("| job SUCCEEDED"));
  EXPECT_THAT(pane, HasSubstr("watch exited 0"));
  EXPECT_THAT(pane, ::testing::Not(HasSubstr("ETA epoch"))) << "the status line is cleared at the end:\n" << pane;

  // After the job: `ddlm status` for a person, and `ddlm plot`.
  std::string output;
  ASSERT_EQ(RunBinary({"coordinator/cli/ddlm", "status", job->id(), "--insecure", "--coordinator=" + cluster.address()},
                      &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr(absl::StrCat(job->id(), "  small  SUCCEEDED")));
  EXPECT_THAT(output, HasSubstr("progress  epoch 6/6"));
  const std::string png = dir + "/curves.png";
  ASSERT_EQ(RunBinary({"coordinator/cli/ddlm", "plot", job->id(), "--out=" + png, "--insecure",
                       "--coordinator=" + cluster.address()},
                      &output),
            0)
      << output;
  absl::StatusOr<std::string> bytes = ReadFile(png);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(bytes->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_GT(bytes->size(), 5000u);
}

}  // namespace
}  // namespace ddlm
