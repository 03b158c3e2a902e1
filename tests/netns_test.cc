// Multi-node end to end: hosts built from Linux network namespaces on this machine.
//
// One "switch" namespace holds a bridge; the coordinator and two workers each run in
// their own namespace, wired to the bridge with a veth pair and addressed
// 10.213.N.1 (coordinator), .2 and .3 (workers). The test (in the root namespace)
// reaches the coordinator through one more veth into the bridge, at .254. Every
// process gets its own private working directory and nothing else: the coordinator's
// state_dir is its own, and the workers take their shards (and checkpoints) over
// gRPC. The workers are not told their --host: each must find the local address that
// routes to the coordinator, and the job's Gloo traffic then runs between the
// namespaces' addresses.
//
// Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and /usr/sbin/ip; without them the test
// is skipped, saying why. Namespaces, veths and the bridge are deleted and every
// process is stopped even when an assertion fails.

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/base/subprocess.h"
#include "common/transport/certificates.h"
#include "common/transport/transport_security.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/job_service.grpc.pb.h"
#include "tests/cluster.h"
#include "tests/command.h"

namespace ddlm {
namespace {

using ::ddlm::CertificateFiles;
using ::ddlm::ClientTransport;
using ::ddlm::MakeCertificates;
using ::ddlm::MakeChannelCredentials;
using ::ddlm::NewToken;
using ::ddlm::RunBinary;
using ::ddlm::Subprocess;
using ::ddlm::WriteSecretFile;
using ::ddlm::testing::Command;
using ::ddlm::testing::CommandResult;
using ::ddlm::testing::Describe;
using ::ddlm::testing::Epochs;
using ::ddlm::testing::FinalState;
using ::ddlm::testing::SmallJob;
using ::testing::HasSubstr;

constexpr char kIp[] = "/usr/sbin/ip";
constexpr char kEnv[] = "/usr/bin/env";
// The whole test (topology, startup, a 2-epoch job) normally takes well under a
// minute; past this the watchdog kills the processes so the test fails with their
// output instead of hanging until Bazel's timeout (and TearDown still cleans up).
constexpr auto kWatchdog = std::chrono::minutes(8);

// Kills the registered processes if the test runs past its deadline.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::steady_clock::duration limit)
      : deadline_(std::chrono::steady_clock::now() + limit), thread_([this] { Run(); }) {}
  ~Watchdog() { Stop(); }

  void Watch(pid_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    pids_.push_back(pid);
  }
  // Must be called before the watched processes are reaped (their pids stay theirs).
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool fired() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fired_;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    if (changed_.wait_until(lock, deadline_, [this] { return stopped_; })) return;
    fired_ = true;
    for (pid_t pid : pids_) kill(pid, SIGKILL);
  }

  const std::chrono::steady_clock::time_point deadline_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<pid_t> pids_;
  bool stopped_ = false;
  bool fired_ = false;
  std::thread thread_;
};

std::string Cwd() {
  char buffer[4096];
  return getcwd(buffer, sizeof(buffer)) ? buffer : ".";
}

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(d);
  }
  return names;
}

class NetnsTest : public ::testing::Test {
 protected:
  struct Host {
    std::string name;     // "coord", "w0", "w1".
    std::string netns;    // The namespace.
    std::string address;  // 10.213.N.k
    std::string dir;      // Private working directory.
  };

  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "network namespaces need root; running as uid " << geteuid();
    }
    if (access(kIp, X_OK) != 0) GTEST_SKIP() << kIp << " is missing (install iproute2)";
    if (access(kEnv, X_OK) != 0) GTEST_SKIP() << kEnv << " is missing";

    // Unique names per run: the pid plus a random token (a leftover of a crashed run
    // with a reused pid cannot clash).
    std::random_device entropy;
    const unsigned token = entropy() & 0xffffff;
    char hex[8];
    std::snprintf(hex, sizeof(hex), "%06x", token);
    const std::string tag = absl::StrCat(getpid(), "-", hex);
    switch_ns_ = absl::StrCat("ddlm-", tag, "-sw");
    root_link_ = absl::StrCat("ddlm", hex);  // At most 15 characters.

    // The only address range the root namespace sees is the .254 side of the test's
    // own veth: pick a /24 that no route there uses yet.
    const CommandResult routes = Command({kIp, "-4", "route", "show", "table", "all"});
    int subnet = -1;
    for (int i = 0; i < 250; ++i) {
      const int n = (getpid() + i) % 250;
      if (routes.output.find(absl::StrCat("10.213.", n, ".")) == std::string::npos) {
        subnet = n;
        break;
      }
    }
    if (subnet < 0) GTEST_SKIP() << "every 10.213.N.0/24 is routed here already";
    prefix_ = absl::StrCat("10.213.", subnet, ".");

    // The first namespace tells whether this environment allows them at all.
    {
      const std::vector<std::string> add = {kIp, "netns", "add", switch_ns_};
      const CommandResult r = Command(add);
      if (r.code != 0) {
        GTEST_SKIP() << "cannot create network namespaces here (needs CAP_SYS_ADMIN and "
                        "CAP_NET_ADMIN, a writable /run/netns): "
                     << Describe(add, r);
      }
      namespaces_.push_back(switch_ns_);
    }

    // Each host's private directory: its working directory and TMPDIR, and for the
    // coordinator the parent of its state_dir.
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string base = absl::StrCat(tmp ? tmp : "/tmp", "/netns-", tag);
    ASSERT_EQ(mkdir(base.c_str(), 0700), 0) << base;
    const char* names[] = {"coord", "w0", "w1"};
    for (int i = 0; i < 3; ++i) {
      Host h;
      h.name = names[i];
      h.netns = absl::StrCat("ddlm-", tag, "-", h.name);
      h.address = absl::StrCat(prefix_, i + 1);
      h.dir = absl::StrCat(base, "/", h.name);
      ASSERT_EQ(mkdir(h.dir.c_str(), 0700), 0) << h.dir;
      hosts_.push_back(h);
    }
    for (const Host& h : hosts_) {
      ASSERT_TRUE(Topology({kIp, "netns", "add", h.netns}));
      namespaces_.push_back(h.netns);
    }
    ASSERT_TRUE(Topology({kIp, "-n", switch_ns_, "link", "set", "lo", "up"}));
    ASSERT_TRUE(Topology({kIp, "-n", switch_ns_, "link", "add", "br0", "type", "bridge"}));
    ASSERT_TRUE(Topology({kIp, "-n", switch_ns_, "link", "set", "br0", "up"}));
    for (const Host& h : hosts_) {
      const std::string port = "p-" + h.name;
      ASSERT_TRUE(Topology(
          {kIp, "-n", switch_ns_, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.netns}));
      ASSERT_TRUE(Topology({kIp, "-n", switch_ns_, "link", "set", port, "master", "br0"}));
      ASSERT_TRUE(Topology({kIp, "-n", switch_ns_, "link", "set", port, "up"}));
      ASSERT_TRUE(Topology({kIp, "-n", h.netns, "link", "set", "lo", "up"}));
      ASSERT_TRUE(Topology({kIp, "-n", h.netns, "addr", "add", h.address + "/24", "dev", "eth0"}));
      ASSERT_TRUE(Topology({kIp, "-n", h.netns, "link", "set", "eth0", "up"}));
    }
    // The test's own way in, from the root namespace.
    ASSERT_TRUE(
        Topology({kIp, "link", "add", root_link_, "type", "veth", "peer", "name", "p-test", "netns", switch_ns_}));
    root_link_created_ = true;
    ASSERT_TRUE(Topology({kIp, "-n", switch_ns_, "link", "set", "p-test", "master", "br0"}));
    ASSERT_TRUE(Topology({kIp, "-n", switch_ns_, "link", "set", "p-test", "up"}));
    ASSERT_TRUE(Topology({kIp, "addr", "add", prefix_ + "254/24", "dev", root_link_}));
    ASSERT_TRUE(Topology({kIp, "link", "set", root_link_, "up"}));
  }

  void TearDown() override {
    watchdog_.Stop();
    // Workers first (SIGTERM lets them report), then the coordinator; the
    // Subprocess destructors SIGKILL and reap whatever is left.
    for (auto& w : workers_) w->Signal(SIGTERM);
    for (auto& w : workers_) w->Wait();
    if (coordinator_) {
      coordinator_->Signal(SIGTERM);
      coordinator_->Wait();
    }
    workers_.clear();
    coordinator_.reset();
    // Deleting the switch namespace removes the bridge and every veth pair with it;
    // the explicit deletes are for a setup that stopped half way.
    if (root_link_created_) {
      const std::vector<std::string> del = {kIp, "link", "del", root_link_};
      const CommandResult r = Command(del);
      EXPECT_EQ(r.code, 0) << Describe(del, r);
    }
    for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
      const std::vector<std::string> del = {kIp, "netns", "del", *it};
      const CommandResult r = Command(del);
      EXPECT_EQ(r.code, 0) << Describe(del, r);
    }
    if (!namespaces_.empty()) {
      const CommandResult left = Command({kIp, "netns", "list"});
      for (const std::string& ns : namespaces_) {
        EXPECT_THAT(left.output, ::testing::Not(HasSubstr(ns))) << "namespace left behind";
      }
    }
  }

  // Runs one topology command; on failure records why (the caller ASSERTs).
  ::testing::AssertionResult Topology(const std::vector<std::string>& argv) {
    const CommandResult r = Command(argv);
    if (r.code == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "building the topology: " << Describe(argv, r);
  }

  // `ip netns exec NS env -C DIR TMPDIR=DIR BINARY ARGS...`: BINARY in the host's
  // namespace with the host's private directory as its working and temp directory.
  std::unique_ptr<Subprocess> Start(const Host& host, const std::string& binary, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {
        kIp, "netns", "exec", host.netns, kEnv, "-C", host.dir, "TMPDIR=" + host.dir, Cwd() + "/" + binary};
    argv.insert(argv.end(), args.begin(), args.end());
    auto process = std::make_unique<Subprocess>(argv);
    watchdog_.Watch(process->pid());
    return process;
  }

  std::string Outputs() const {
    std::string out;
    if (coordinator_) out += "--- coordinator:\n" + coordinator_->output();
    for (size_t i = 0; i < workers_.size(); ++i) {
      out += absl::StrCat("--- worker ", i, ":\n", workers_[i]->output());
    }
    if (watchdog_.fired()) out += "--- the watchdog killed the processes (test too slow)\n";
    return out;
  }

  std::string switch_ns_;
  std::string root_link_;
  bool root_link_created_ = false;
  std::string prefix_;  // "10.213.N."
  std::vector<Host> hosts_;
  std::vector<std::string> namespaces_;  // Created ones, for TearDown.
  Watchdog watchdog_{kWatchdog};
  std::unique_ptr<Subprocess> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
};

TEST_F(NetnsTest, TwoWorkersOnSeparateHostsCompleteAJob) {
  const Host& coord = hosts_[0];
  // As the README sets up several machines: a CA and a certificate for the
  // coordinator's address (ddlm certs), a tokens file, and each worker host its token.
  const std::string pki = coord.dir + "/pki";
  absl::StatusOr<CertificateFiles> files = MakeCertificates(pki, {coord.address});
  ASSERT_TRUE(files.ok()) << files.status();
  const std::string admin = *NewToken(), worker_token = *NewToken();
  ASSERT_TRUE(
      WriteSecretFile(pki + "/tokens", absl::StrCat(admin, " admin test\n", worker_token, " worker hosts\n")).ok());
  ASSERT_TRUE(WriteSecretFile(pki + "/worker.token", worker_token).ok());
  ASSERT_TRUE(WriteSecretFile(pki + "/admin.token", admin).ok());
  coordinator_ = Start(coord, "coordinator/ddlm_coordinator",
                       {"--host=0.0.0.0", "--port=0", "--state_dir=" + coord.dir + "/state",
                        "--data_root=" + ::ddlm::testing::DataRootsForTests(), "--tls_cert=" + files->server_cert,
                        "--tls_key=" + files->server_key, "--tokens_file=" + pki + "/tokens"});
  std::string line;
  ASSERT_TRUE(coordinator_->WaitForLine("listening on ", &line)) << Outputs();
  const std::string rest = line.substr(line.find("listening on ") + 13);
  const std::string listen = rest.substr(0, rest.find(' '));
  const std::string port = listen.substr(listen.rfind(':') + 1);
  ASSERT_FALSE(port.empty()) << line;
  const std::string address = coord.address + ":" + port;

  for (int i = 1; i <= 2; ++i) {
    const Host& h = hosts_[i];
    workers_.push_back(Start(h, "worker/ddlm_worker",
                             {"--coordinator=" + address, "--worker_id=" + h.name, "--ca_cert=" + files->ca_cert,
                              "--token_file=" + pki + "/worker.token"}));
    ASSERT_TRUE(workers_.back()->WaitForLine("registered as incarnation", &line)) << Outputs();
    // --host was left out: the worker found the address that routes to the coordinator.
    EXPECT_THAT(line, HasSubstr("(host " + h.address + ",")) << line;
  }

  grpc::ChannelArguments channel_args;
  channel_args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  ClientTransport transport;
  transport.ca_cert = files->ca_cert;
  transport.token_file = pki + "/admin.token";
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = MakeChannelCredentials(transport);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  auto stub = JobService::NewStub(grpc::CreateCustomChannel(address, *credentials, channel_args));
  const auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::minutes(5); };

  // The corpus is read by the coordinator only; the workers get their shards over gRPC.
  JobSpec spec = SmallJob(2, 2);
  spec.mutable_data()->set_path(Cwd() + "/configs/quickstart_data");
  Job job;
  {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    SubmitJobRequest request;
    *request.mutable_spec() = spec;
    grpc::Status status = stub->SubmitJob(&context, request, &job);
    ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << Outputs();
  }

  std::vector<JobEvent> events;
  {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    WatchJobRequest request;
    request.set_job_id(job.id());
    auto reader = stub->WatchJob(&context, request);
    JobEvent event;
    while (reader->Read(&event)) events.push_back(event);
    grpc::Status status = reader->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << Outputs();
  }
  ASSERT_EQ(FinalState(events), SUCCEEDED) << Outputs();
  const std::vector<EpochResult> epochs = Epochs(events);
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_LT(epochs[1].val_ppl(), epochs[0].val_ppl());

  // Both workers are known by their namespaces' addresses and took part.
  {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    ListWorkersResponse listed;
    grpc::Status status = stub->ListWorkers(&context, {}, &listed);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(listed.workers_size(), 2) << listed.DebugString();
    for (int i = 1; i <= 2; ++i) {
      const Host& h = hosts_[i];
      const WorkerInfo* found = nullptr;
      for (const WorkerInfo& w : listed.workers()) {
        if (w.worker_id() == h.name) found = &w;
      }
      ASSERT_NE(found, nullptr) << h.name << " missing: " << listed.DebugString();
      EXPECT_EQ(found->host(), h.address) << found->DebugString();
      EXPECT_EQ(found->state(), IDLE) << found->DebugString();
    }
  }
  // The job is over once the coordinator heard from both; a worker's own log line of it
  // may still be in the pipe.
  for (auto& w : workers_) EXPECT_TRUE(w->WaitForLine("finished " + job.id())) << w->output();

  // The coordinator keeps the job's files; a worker only its shards (train, valid,
  // test: token files it maps), in $TMPDIR/ddlm-shards-<worker id>.
  EXPECT_FALSE(DirEntries(coord.dir + "/state").empty());
  for (int i = 1; i <= 2; ++i) {
    const std::string shards = "ddlm-shards-" + hosts_[i].name;
    EXPECT_THAT(DirEntries(hosts_[i].dir), ::testing::ElementsAre(shards)) << hosts_[i].dir;
    const std::vector<std::string> files = DirEntries(hosts_[i].dir + "/" + shards);
    EXPECT_EQ(files.size(), 3u);
    for (const std::string& f : files) EXPECT_THAT(f, ::testing::EndsWith(".ddlm-shard"));
  }
}

}  // namespace
}  // namespace ddlm
