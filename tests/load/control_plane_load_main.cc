// Benchmark (not a test): the control plane under many workers. One process simulates
// --workers workers that follow the real worker protocol (worker/rpc's gRPC client,
// one connection each) against a real ddlm_coordinator on loopback:
//
//   - register, heartbeat at 1 Hz, and stream commands;
//   - once assigned (jobs of --job_size ranks): download their shards, report metrics
//     every --log_interval_s, meet the validation barrier every --epoch_s, and rank 0
//     uploads a small checkpoint after each barrier;
//
// alongside --watchers WatchJob streams and --pollers clients calling GetJob (and every
// tenth time ListJobs) at --poll_hz each. After every job runs and --warmup_s passes,
// it measures for --duration_s and prints p50/p99/max latency per RPC (as the clients
// saw it, and as the coordinator's own /metrics histograms saw it), the
// coordinator's CPU (share of one core) and RSS, events/s, and false worker deaths
// (heartbeats refused as dead, workers listed DEAD, jobs FAILED).
//
//   bazel build -c opt //tests/load:control_plane_load //coordinator:ddlm_coordinator
//   bazel-bin/tests/load/control_plane_load --workers=1000 --watchers=100
//       --coordinator_cpus=0 --client_cpus=1 --duration_s=300      (one line)
//
// --coordinator_cpus runs the coordinator under `taskset -c`; --client_cpus pins this
// process. The simulated workers sleep between calls (that is the load's shape).

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/base/checkpoint_format.h"
#include "common/base/cli.h"
#include "common/base/config.h"
#include "common/base/subprocess.h"
#include "proto/job_service.grpc.pb.h"
#include "tests/load/server_latency.h"
#include "worker/coordinator_client.h"
#include "worker/rpc/grpc_coordinator_client.h"

ABSL_FLAG(std::string, coordinator, "", "ddlm_coordinator binary (default: next to this one's bazel-bin).");
ABSL_FLAG(std::string, data, "configs/quickstart_data", "Corpus directory the jobs train on.");
ABSL_FLAG(int32_t, workers, 1000, "Simulated workers.");
ABSL_FLAG(int32_t, job_size, 8, "Workers per job (jobs = workers / job_size).");
ABSL_FLAG(int32_t, watchers, 100, "WatchJob streams, spread over the jobs.");
ABSL_FLAG(int32_t, pollers, 10, "Clients calling GetJob (and ListJobs every tenth call).");
ABSL_FLAG(double, poll_hz, 10, "Calls per second per poller.");
ABSL_FLAG(double, log_interval_s, 1, "Seconds between a rank's metrics reports.");
ABSL_FLAG(double, epoch_s, 20, "Seconds between validation barriers (and checkpoints).");
ABSL_FLAG(int32_t, checkpoint_kb, 64, "Size of the checkpoints rank 0 uploads.");
ABSL_FLAG(int32_t, warmup_s, 20, "Seconds after every job runs before measuring.");
ABSL_FLAG(int32_t, duration_s, 60, "Seconds measured.");
ABSL_FLAG(int32_t, heartbeat_timeout_ms, 10000, "The coordinator's --heartbeat_timeout_ms.");
ABSL_FLAG(std::string, coordinator_cpus, "", "CPU list for the coordinator (taskset -c); empty: no pinning.");
ABSL_FLAG(std::string, client_cpus, "", "CPU list for this process; empty: no pinning.");
ABSL_FLAG(std::string, state_dir, "/tmp/ddlm_control_plane_load", "The coordinator's state directory (emptied).");

namespace ddlm {
namespace {

using Steady = std::chrono::steady_clock;

std::atomic<bool> g_measuring{false};
std::atomic<bool> g_stop{false};

// Latencies of one RPC, recorded while measuring.
class Latencies {
 public:
  void Add(Steady::time_point start) {
    AddMs(std::chrono::duration<double, std::milli>(Steady::now() - start).count());
  }
  void AddMs(double ms) {
    if (!g_measuring.load(std::memory_order_relaxed)) return;
    absl::MutexLock lock(&mu_);
    ms_.push_back(ms);
  }
  void Print(const std::string& name) {
    absl::MutexLock lock(&mu_);
    if (ms_.empty()) {
      std::printf("%-18s %9d %9s %9s %9s\n", name.c_str(), 0, "-", "-", "-");
      return;
    }
    std::sort(ms_.begin(), ms_.end());
    auto at = [&](double q) {
      return ms_[std::min(ms_.size() - 1, static_cast<size_t>(q * static_cast<double>(ms_.size())))];
    };
    std::printf("%-18s %9zu %9.2f %9.2f %9.2f\n", name.c_str(), ms_.size(), at(0.5), at(0.99), ms_.back());
  }

 private:
  absl::Mutex mu_;
  std::vector<double> ms_ ABSL_GUARDED_BY(mu_);
};

std::map<std::string, Latencies>& Rpcs() {
  static auto* rpcs = [] {
    auto* m = new std::map<std::string, Latencies>;
    for (const char* name : {"Register", "Heartbeat", "DownloadShard", "ReportMetrics", "ReportEvaluation(barrier)",
                             "UploadCheckpoint", "GetJob", "ListJobs", "WatchJob(event)"}) {
      m->try_emplace(name);
    }
    return m;
  }();
  return *rpcs;
}

std::atomic<int64_t> g_heartbeats_refused{0};
std::atomic<int64_t> g_rpc_errors{0};

void CountError(const absl::Status& s, const char* what) {
  if (s.ok() || g_stop.load()) return;  // Calls cut off by the shutdown are not errors.
  if (g_rpc_errors.fetch_add(1) < 10) std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
}

std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address) {
  // One connection per simulated worker, as separate processes would have.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// Sleeps up to `d`, in short steps, returning early once the run stops.
void Nap(absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  while (!g_stop.load() && absl::Now() < until) {
    absl::SleepFor(std::min(absl::Milliseconds(200), until - absl::Now()));
  }
}

class SimWorker {
 public:
  SimWorker(int index, const std::string& address) : index_(index) {
    client_ = NewGrpcCoordinatorClient(OwnChannel(address), absl::Seconds(30));
    ref_.set_worker_id(absl::StrCat("sim-", index));
    ref_.set_incarnation(static_cast<uint64_t>(std::random_device()()) << 16 | static_cast<uint64_t>(index + 1));
  }

  absl::Status Register() {
    RegisterRequest r;
    *r.mutable_worker() = ref_;
    r.set_host("127.0.0.1");
    r.set_device("cpu");
    const auto start = Steady::now();
    absl::Status s = client_->Register(r).status();
    Rpcs()["Register"].Add(start);
    return s;
  }

  void Heartbeat() {
    const auto start = Steady::now();
    absl::Status s = client_->Heartbeat(ref_);
    Rpcs()["Heartbeat"].Add(start);
    if (s.code() == absl::StatusCode::kAborted || s.code() == absl::StatusCode::kNotFound) {
      g_heartbeats_refused.fetch_add(1);
    } else {
      CountError(s, "Heartbeat");
    }
  }

  void Start() {
    stream_ = client_->StreamCommands(ref_);
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    if (stream_) stream_->Cancel();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    WorkerCommand command;
    while (!g_stop.load() && stream_->Next(&command)) {
      if (command.has_assign()) Train(command.assign());
    }
  }

  void Train(const Assignment& a) {
    const AttemptRef& attempt = a.attempt();
    for (Split split : {TRAIN, VALID, TEST}) {
      DownloadShardRequest d;
      *d.mutable_worker() = ref_;
      *d.mutable_attempt() = attempt;
      d.set_split(split);
      const auto start = Steady::now();
      absl::Status s = client_->DownloadShard(d, [](absl::string_view) { return absl::OkStatus(); });
      Rpcs()["DownloadShard"].Add(start);
      CountError(s, "DownloadShard");
    }
    const absl::Duration log_interval = absl::Seconds(absl::GetFlag(FLAGS_log_interval_s));
    const int reports_per_epoch =
        std::max(1, static_cast<int>(absl::GetFlag(FLAGS_epoch_s) / absl::GetFlag(FLAGS_log_interval_s)));
    // Ranks of a job start within moments of each other; spread their reports.
    Nap(log_interval * (static_cast<double>(index_ % 97) / 97.0));
    int64_t step = 0;
    for (int epoch = 1; !g_stop.load(); ++epoch) {
      for (int i = 0; i < reports_per_epoch && !g_stop.load(); ++i) {
        Nap(log_interval);
        step += 200;
        ReportMetricsRequest m;
        *m.mutable_worker() = ref_;
        *m.mutable_attempt() = attempt;
        m.set_global_step(step);
        TrainingMetrics& t = *m.mutable_metrics();
        t.set_epoch(epoch);
        t.set_batch(i * 200 + 199);
        t.set_num_batches(reports_per_epoch * 200);
        t.set_lr(20);
        t.set_loss(6.0 - 0.001 * static_cast<double>(step % 1000));
        t.set_tokens_per_second(5000);
        t.set_ms_per_batch(40);
        const auto start = Steady::now();
        absl::Status s = client_->ReportMetrics(m);
        Rpcs()["ReportMetrics"].Add(start);
        if (!s.ok()) {
          CountError(s, "ReportMetrics");
          return;
        }
      }
      if (g_stop.load()) return;
      ReportEvaluationRequest e;
      *e.mutable_worker() = ref_;
      *e.mutable_attempt() = attempt;
      e.set_split(VALID);
      e.set_epoch(epoch);
      e.set_loss_sum(5.0 * 1000);
      e.set_tokens(1000);
      e.set_seconds(0.5);
      const auto start = Steady::now();
      absl::StatusOr<EvaluationDecision> decision = client_->ReportEvaluation(e, absl::Seconds(120));
      Rpcs()["ReportEvaluation(barrier)"].Add(start);
      if (!decision.ok()) {
        if (!g_stop.load()) CountError(decision.status(), "ReportEvaluation");
        return;
      }
      if (attempt.rank() == 0) Upload(a, epoch + 1, step, decision->lr());
    }
  }

  void Upload(const Assignment& a, int epoch, int64_t step, double lr) {
    CheckpointHeader header;
    *header.mutable_spec() = a.spec();
    // The job's vocabulary, as a real rank 0's checkpoint has (the coordinator checks it).
    for (const std::string& word : a.vocabulary()) header.add_vocabulary(word);
    header.mutable_position()->set_epoch(epoch);
    header.mutable_position()->set_global_step(step);
    header.set_lr(lr);
    header.set_val_loss(5.0);
    header.set_best_val_loss(5.0);
    const int64_t floats = absl::GetFlag(FLAGS_checkpoint_kb) * 256;
    const std::string zeros(static_cast<size_t>(floats) * 4, '\0');
    absl::StatusOr<std::string> bytes = EncodeCheckpoint(header, {{"param/w", FLOAT32, {floats}, zeros}});
    if (!bytes.ok()) {
      CountError(bytes.status(), "EncodeCheckpoint");
      return;
    }
    const auto start = Steady::now();
    absl::Status s = client_->UploadCheckpoint(ref_, a.attempt(), *bytes).status();
    Rpcs()["UploadCheckpoint"].Add(start);
    CountError(s, "UploadCheckpoint");
  }

  int index_;
  WorkerRef ref_;
  std::unique_ptr<CoordinatorClient> client_;
  std::unique_ptr<CommandStream> stream_;
  std::thread thread_;
};

struct ProcStats {
  double cpu_seconds = 0;
  int64_t rss_kb = 0, peak_rss_kb = 0;
};

ProcStats ReadProc(pid_t pid) {
  ProcStats p;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the ")" that closes the command name: state is field 3; utime 14, stime 15.
  const size_t close = content.rfind(')');
  if (close != std::string::npos) {
    std::vector<std::string> fields = absl::StrSplit(content.substr(close + 2), ' ');
    int64_t utime = 0, stime = 0;
    if (fields.size() > 12 && absl::SimpleAtoi(fields[11], &utime) && absl::SimpleAtoi(fields[12], &stime)) {
      p.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    int64_t* into = absl::StartsWith(line, "VmRSS:")   ? &p.rss_kb
                    : absl::StartsWith(line, "VmHWM:") ? &p.peak_rss_kb
                                                       : nullptr;
    if (into == nullptr) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (parts.size() >= 2) (void)absl::SimpleAtoi(parts[1], into);
  }
  return p;
}

bool PinSelf(const std::string& cpus) {
  if (cpus.empty()) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (absl::string_view part : absl::StrSplit(cpus, ',')) {
    std::vector<std::string> range = absl::StrSplit(part, '-');
    int lo = 0, hi = 0;
    if (!absl::SimpleAtoi(range[0], &lo)) return false;
    hi = lo;
    if (range.size() == 2 && !absl::SimpleAtoi(range[1], &hi)) return false;
    for (int c = lo; c <= hi; ++c) CPU_SET(c, &set);
  }
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

int Run() {
  const int num_workers = absl::GetFlag(FLAGS_workers), job_size = absl::GetFlag(FLAGS_job_size);
  if (num_workers < 1 || job_size < 1 || num_workers % job_size != 0) {
    std::fprintf(stderr, "--workers must be a positive multiple of --job_size\n");
    return 2;
  }
  if (!(absl::GetFlag(FLAGS_poll_hz) > 0) || !(absl::GetFlag(FLAGS_log_interval_s) > 0) ||
      !(absl::GetFlag(FLAGS_epoch_s) >= absl::GetFlag(FLAGS_log_interval_s))) {
    std::fprintf(stderr, "--poll_hz and --log_interval_s must be > 0, and --epoch_s >= --log_interval_s\n");
    return 2;
  }
  if (absl::GetFlag(FLAGS_watchers) < 0 || absl::GetFlag(FLAGS_pollers) < 0 || absl::GetFlag(FLAGS_warmup_s) < 0 ||
      absl::GetFlag(FLAGS_duration_s) < 1 || absl::GetFlag(FLAGS_checkpoint_kb) < 1 ||
      absl::GetFlag(FLAGS_heartbeat_timeout_ms) < 2000) {
    std::fprintf(stderr,
                 "--watchers, --pollers and --warmup_s must be >= 0, --duration_s and --checkpoint_kb >= 1, "
                 "--heartbeat_timeout_ms >= 2000 (the workers heartbeat every second)\n");
    return 2;
  }
  if (!PinSelf(absl::GetFlag(FLAGS_client_cpus))) {
    std::fprintf(stderr, "--client_cpus '%s': cannot pin\n", absl::GetFlag(FLAGS_client_cpus).c_str());
    return 2;
  }
  // Each simulated worker holds a connection and a thread or two.
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);

  const std::string state_dir = absl::GetFlag(FLAGS_state_dir);
  if (std::system(("rm -rf '" + state_dir + "'").c_str()) != 0) return 1;
  std::string binary = absl::GetFlag(FLAGS_coordinator);
  if (binary.empty()) binary = SiblingBinary(SelfExecutable(), "tests/load", "coordinator", "ddlm_coordinator");
  char cwd[4096] = {};
  const std::string data = absl::GetFlag(FLAGS_data)[0] == '/'
                               ? absl::GetFlag(FLAGS_data)
                               : std::string(getcwd(cwd, sizeof(cwd))) + "/" + absl::GetFlag(FLAGS_data);
  std::vector<std::string> argv;
  if (!absl::GetFlag(FLAGS_coordinator_cpus).empty()) {
    argv = {"/usr/bin/taskset", "-c", absl::GetFlag(FLAGS_coordinator_cpus)};
  }
  for (std::string a : {binary, std::string("--port=0"), std::string("--host=127.0.0.1"), "--state_dir=" + state_dir,
                        "--data_root=" + data, std::string("--insecure"),
                        absl::StrCat("--heartbeat_timeout_ms=", absl::GetFlag(FLAGS_heartbeat_timeout_ms)),
                        std::string("--metrics_port=0")}) {
    argv.push_back(a);
  }
  Subprocess coordinator(argv);
  std::string line;
  if (!coordinator.WaitForLine("listening on", &line)) {
    std::fprintf(stderr, "the coordinator did not start:\n%s\n", coordinator.output().c_str());
    return 1;
  }
  const std::string rest = line.substr(line.find("listening on ") + 13);
  const std::string address = rest.substr(0, rest.find(' '));
  // Its /metrics: the server-side latencies, from its interceptor's histograms.
  std::string metrics_line;
  if (!coordinator.WaitForLine("metrics on http://", &metrics_line)) {
    std::fprintf(stderr, "the coordinator did not serve metrics:\n%s\n", coordinator.output().c_str());
    return 1;
  }
  const std::string metrics_at = metrics_line.substr(metrics_line.find("http://") + 7);
  const std::string metrics_host = metrics_at.substr(0, metrics_at.find(':'));
  int metrics_port = 0;
  if (!absl::SimpleAtoi(metrics_at.substr(metrics_at.find(':') + 1, metrics_at.find('/') - metrics_at.find(':') - 1),
                        &metrics_port)) {
    std::fprintf(stderr, "cannot read the metrics address in: %s\n", metrics_line.c_str());
    return 1;
  }
  auto scrape = [&]() -> std::map<std::string, CumulativeHistogram> {
    absl::StatusOr<std::string> page = HttpGet(metrics_host, metrics_port, "/metrics");
    if (!page.ok()) {
      std::fprintf(stderr, "scraping the coordinator's metrics: %s\n", page.status().ToString().c_str());
      return {};
    }
    absl::StatusOr<std::map<std::string, CumulativeHistogram>> parsed = ParseRpcDurationHistograms(*page);
    if (!parsed.ok()) {
      std::fprintf(stderr, "the coordinator's metrics: %s\n", parsed.status().ToString().c_str());
      return {};
    }
    return *std::move(parsed);
  };
  std::printf("coordinator %s (pid %d) on %s, pinned to cpus '%s'; this process on '%s'\n", binary.c_str(),
              coordinator.pid(), address.c_str(), absl::GetFlag(FLAGS_coordinator_cpus).c_str(),
              absl::GetFlag(FLAGS_client_cpus).c_str());
  std::fflush(stdout);

  // Workers: register, then heartbeat at 1 Hz from a few driver threads, spread evenly.
  std::vector<std::unique_ptr<SimWorker>> workers;
  for (int i = 0; i < num_workers; ++i) workers.push_back(std::make_unique<SimWorker>(i, address));
  std::vector<std::thread> heartbeaters;
  const int drivers = std::min(num_workers, 32);
  absl::BlockingCounter registered(drivers);
  for (int d = 0; d < drivers; ++d) {
    heartbeaters.emplace_back([&, d] {
      std::vector<SimWorker*> mine;
      for (int i = d; i < num_workers; i += drivers) mine.push_back(workers[i].get());
      const absl::Duration period = absl::Seconds(1);
      absl::Time next = absl::Now() + period * (static_cast<double>(d) / drivers);
      // The first pass registers each worker in its slot; later passes heartbeat it,
      // so that every worker heartbeats about a second after it registered, however
      // long registering them all takes.
      for (bool first = true; !g_stop.load(); first = false) {
        for (size_t k = 0; k < mine.size() && !g_stop.load(); ++k) {
          // Evenly over the second: this worker's slot.
          const absl::Time slot = next + period * (static_cast<double>(k) / static_cast<double>(mine.size()));
          if (slot > absl::Now()) absl::SleepFor(slot - absl::Now());
          if (first) {
            CountError(mine[k]->Register(), "Register");
          } else {
            mine[k]->Heartbeat();
          }
        }
        if (first) registered.DecrementCount();
        next += period;
      }
    });
  }
  registered.Wait();
  for (auto& w : workers) w->Start();

  auto job_channel = OwnChannel(address);
  auto jobs_stub = JobService::NewStub(job_channel);
  const int num_jobs = num_workers / job_size;
  std::vector<std::string> job_ids;
  for (int j = 0; j < num_jobs; ++j) {
    SubmitJobRequest r;
    JobSpec& spec = *r.mutable_spec();
    spec.set_name(absl::StrCat("load-", j));
    spec.mutable_data()->set_path(data);
    spec.mutable_data()->set_batch_size(1);
    spec.mutable_data()->set_eval_batch_size(1);
    spec.mutable_model()->set_emsize(8);
    spec.mutable_model()->set_nhid(8);
    spec.mutable_schedule()->set_epochs(100000);
    spec.mutable_checkpoint()->set_keep_last(2);
    spec.set_num_workers(job_size);
    ApplyDefaults(&spec);
    Job job;
    grpc::ClientContext ctx;
    grpc::Status s = jobs_stub->SubmitJob(&ctx, r, &job);
    if (!s.ok()) {
      std::fprintf(stderr, "SubmitJob: %s\n", s.error_message().c_str());
      g_stop = true;
      break;
    }
    job_ids.push_back(job.id());
  }

  auto list_jobs = [&](ListJobsResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return jobs_stub->ListJobs(&ctx, ListJobsRequest(), out);
  };
  // Wait (bounded) until every job runs.
  const absl::Time give_up = absl::Now() + absl::Minutes(5);
  int running = 0;
  while (!g_stop.load() && absl::Now() < give_up) {
    ListJobsResponse jobs;
    if (list_jobs(&jobs).ok()) {
      running = 0;
      for (const Job& j : jobs.jobs()) running += j.state() == RUNNING;
      if (running == num_jobs) break;
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
  std::printf("%d workers registered, %d of %d jobs running\n", num_workers, running, num_jobs);
  std::fflush(stdout);

  // Watchers and pollers.
  std::vector<std::thread> clients;
  std::vector<std::unique_ptr<grpc::ClientContext>> watch_contexts;
  for (int i = 0; i < absl::GetFlag(FLAGS_watchers) && !job_ids.empty(); ++i) {
    watch_contexts.push_back(std::make_unique<grpc::ClientContext>());
    grpc::ClientContext* ctx = watch_contexts.back().get();
    clients.emplace_back([&, ctx, i] {
      WatchJobRequest r;
      r.set_job_id(job_ids[static_cast<size_t>(i) % job_ids.size()]);
      auto reader = jobs_stub->WatchJob(ctx, r);
      JobEvent event;
      while (reader->Read(&event)) {
        // How long after the coordinator stamped it the event reached a watcher.
        const double ms = static_cast<double>(absl::ToUnixMicros(absl::Now()) - event.unix_micros()) / 1000.0;
        if (ms >= 0) Rpcs()["WatchJob(event)"].AddMs(ms);
      }
      (void)reader->Finish();
    });
  }
  for (int i = 0; i < absl::GetFlag(FLAGS_pollers) && !job_ids.empty(); ++i) {
    clients.emplace_back([&, i] {
      std::mt19937 rng(static_cast<uint32_t>(i));
      const absl::Duration period = absl::Seconds(1.0 / absl::GetFlag(FLAGS_poll_hz));
      for (int64_t n = 0; !g_stop.load(); ++n) {
        const auto start = Steady::now();
        if (n % 10 == 9) {
          ListJobsResponse jobs;
          grpc::Status s = list_jobs(&jobs);
          Rpcs()["ListJobs"].Add(start);
          if (!s.ok()) CountError(absl::UnavailableError(s.error_message()), "ListJobs");
        } else {
          GetJobRequest r;
          r.set_job_id(job_ids[rng() % job_ids.size()]);
          Job job;
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
          grpc::Status s = jobs_stub->GetJob(&ctx, r, &job);
          Rpcs()["GetJob"].Add(start);
          if (!s.ok()) CountError(absl::UnavailableError(s.error_message()), "GetJob");
        }
        Nap(period);
      }
    });
  }

  Nap(absl::Seconds(absl::GetFlag(FLAGS_warmup_s)));
  ListJobsResponse before;
  (void)list_jobs(&before);
  const ProcStats proc_before = ReadProc(coordinator.pid());
  const std::map<std::string, CumulativeHistogram> server_before = scrape();
  const absl::Time t0 = absl::Now();
  g_measuring = true;
  Nap(absl::Seconds(absl::GetFlag(FLAGS_duration_s)));
  g_measuring = false;
  const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  const ProcStats proc_after = ReadProc(coordinator.pid());
  const std::map<std::string, CumulativeHistogram> server_after = scrape();
  ListJobsResponse after;
  (void)list_jobs(&after);
  int64_t events = 0;
  int failed_jobs = 0;
  for (const Job& j : after.jobs()) {
    events += j.last_event_sequence();
    failed_jobs += j.state() == FAILED;
  }
  for (const Job& j : before.jobs()) events -= j.last_event_sequence();
  int dead_workers = 0;
  {
    auto workers_stub = JobService::NewStub(job_channel);
    grpc::ClientContext ctx;
    ListWorkersResponse listed;
    if (workers_stub->ListWorkers(&ctx, ListWorkersRequest(), &listed).ok()) {
      for (const WorkerInfo& w : listed.workers()) dead_workers += w.state() == DEAD;
    }
  }

  std::printf("\n%d workers in %d jobs of %d, %d watchers, %d pollers at %.0f Hz; %.0f s measured after %d s warm-up\n",
              num_workers, num_jobs, job_size, absl::GetFlag(FLAGS_watchers), absl::GetFlag(FLAGS_pollers),
              absl::GetFlag(FLAGS_poll_hz), seconds, absl::GetFlag(FLAGS_warmup_s));
  std::printf("coordinator: CPU %.1f%% of one core, RSS %.0f MiB (peak %.0f MiB)\n",
              100.0 * (proc_after.cpu_seconds - proc_before.cpu_seconds) / seconds,
              static_cast<double>(proc_after.rss_kb) / 1024.0, static_cast<double>(proc_after.peak_rss_kb) / 1024.0);
  std::printf("%-18s %9s %9s %9s %9s\n", "rpc", "count", "p50_ms", "p99_ms", "max_ms");
  for (auto& [name, latencies] : Rpcs()) latencies.Print(name);
  // The same window as the coordinator saw it, arrival to status: a client-side p99 far
  // above these means the simulated workers' own core, not the coordinator, was slow.
  std::printf("coordinator's own view (its /metrics histograms over the same window; p50/p99 are bucket bounds):\n");
  std::printf("%-36s %9s %10s %10s\n", "method", "count", "p50_ms<=", "p99_ms<=");
  static const CumulativeHistogram kNone;
  for (const auto& [method, histogram] : server_after) {
    auto found = server_before.find(method);
    const CumulativeHistogram& before_h = found == server_before.end() ? kNone : found->second;
    const WindowQuantile p50 = QuantileBetween(before_h, histogram, 0.5);
    const WindowQuantile p99 = QuantileBetween(before_h, histogram, 0.99);
    if (p99.count == 0) continue;
    std::printf("%-36s %9lld %10g %10g\n", method.c_str(), static_cast<long long>(p99.count), 1000.0 * p50.upper_s,
                1000.0 * p99.upper_s);
  }
  std::printf("events/s %.1f\n", static_cast<double>(events) / seconds);
  std::printf("false worker deaths: %lld heartbeats refused, %d workers DEAD, %d jobs FAILED; other RPC errors %lld\n",
              static_cast<long long>(g_heartbeats_refused.load()), dead_workers, failed_jobs,
              static_cast<long long>(g_rpc_errors.load()));
  std::fflush(stdout);

  // Stop everything: the coordinator first (the workers' calls then fail fast).
  g_stop = true;
  for (auto& ctx : watch_contexts) ctx->TryCancel();
  for (auto& w : workers) w->Stop();
  coordinator.Signal(SIGTERM);
  (void)coordinator.Wait();
  for (auto& t : heartbeaters) t.join();
  for (auto& t : clients) t.join();
  for (auto& w : workers) w->Join();
  const bool ok = g_heartbeats_refused.load() == 0 && dead_workers == 0 && failed_jobs == 0;
  return ok ? 0 : 3;
}

}  // namespace
}  // namespace ddlm

int main(int argc, char** argv) {
  ddlm::ParseFlagsOrExit(argc, argv, "control_plane_load",
                         "control_plane_load [--workers=1000] [--watchers=100] [--duration_s=60] "
                         "[--coordinator_cpus=0]: the control plane under many simulated workers");
  return ddlm::Run();
}
