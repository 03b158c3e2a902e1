// ddlm_worker: one data-parallel rank per process (one per GPU or CPU slot). It
// registers with the coordinator under a fresh incarnation, heartbeats, and runs the
// job attempts the coordinator assigns, one at a time.
//
//   ddlm_worker --coordinator HOST:PORT [--device cpu] [--worker_id ID] [--host ADDR]
//
// The membership (registration, heartbeats, commands, new incarnations after the
// coordinator declares this one dead or goes away) is worker_agent.h's; this file parses
// the flags, builds the gRPC client and a JobRunner per assignment, and turns SIGINT /
// SIGTERM into the agent's Shutdown. Threads: the main thread runs the agent (reading
// the command stream); the agent adds a heartbeat and a runner thread; one more waits
// for signals.

#include <glog/logging.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/base/cli.h"
#include "common/base/clock.h"
#include "common/base/file_io.h"
#include "common/base/shutdown_signal.h"
#include "common/training/accelerator.h"
#include "common/training/device.h"
#include "common/transport/transport_flags.h"
#include "worker/collectives/collective_factory.h"
#include "worker/coordinator_client.h"
#include "worker/job_runner.h"
#include "worker/local_address.h"
#include "worker/shard_store.h"
#include "worker/rpc/grpc_coordinator_client.h"
#include "worker/worker_agent.h"

ABSL_FLAG(std::string, coordinator, "", "The coordinator's host:port (required).");
ABSL_FLAG(std::string, device, "cpu", "cpu, or cuda:N (a --config=cuda build; one worker per GPU).");
ABSL_FLAG(std::string, collective, "auto",
          "Gradient all-reduce: auto (Gloo on cpu, NCCL on cuda:N), gloo (through host memory, "
          "e.g. several workers sharing one GPU) or nccl.");
ABSL_FLAG(std::string, worker_id, "", "Stable name of this worker (default: hostname-device).");
ABSL_FLAG(std::string, host, "",
          "Address other workers reach this one on (default: the local address that routes "
          "to the coordinator).");
ABSL_FLAG(int32_t, collective_timeout_s, 300, "Timeout of rendezvous and every collective.");
ABSL_FLAG(std::string, shard_dir, "",
          "Where this worker keeps its shards, memory-mapped; a shard already there is not "
          "downloaded again (default: $TMPDIR/ddlm-shards-<worker id>, removed at exit when "
          "the worker id was not given).");

namespace {

constexpr char kUsage[] = "ddlm_worker --coordinator HOST:PORT [--device cpu|cuda:N] [--collective auto|gloo|nccl]";

}  // namespace

int main(int argc, char** argv) {
  ddlm::ParseFlagsOrExit(argc, argv, "ddlm_worker", kUsage);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  const std::string coordinator = absl::GetFlag(FLAGS_coordinator);
  if (coordinator.empty()) {
    std::fprintf(stderr, "ddlm_worker: --coordinator HOST:PORT is required\n");
    return 2;
  }
  absl::StatusOr<torch::Device> resolved = ddlm::ResolveDevice(absl::GetFlag(FLAGS_device));
  if (!resolved.ok()) {
    std::fprintf(stderr, "ddlm_worker: --device: %s\n", std::string(resolved.status().message()).c_str());
    return 2;
  }
  const std::string device = resolved->str();  // "cpu" or "cuda:N", as registered.
  absl::StatusOr<ddlm::CollectiveBackend> backend = ddlm::ParseCollectiveBackend(absl::GetFlag(FLAGS_collective));
  if (!backend.ok()) {
    std::fprintf(stderr, "ddlm_worker: --collective: %s\n", std::string(backend.status().message()).c_str());
    return 2;
  }
  if (*backend == ddlm::CollectiveBackend::kNccl && !resolved->is_cuda()) {
    std::fprintf(stderr, "ddlm_worker: --collective nccl needs --device cuda:N\n");
    return 2;
  }
  LOG(INFO) << "device " << ddlm::DescribeDevice(*resolved) << ", collective " << ddlm::CollectiveBackendName(*backend);
  if (resolved->is_cuda()) {
    // Which CUDA runtime and NCCL this binary drives, for bug reports and version skew
    // between hosts.
    const ddlm::AcceleratorInfo accelerators = ddlm::DetectAccelerators();
    LOG(INFO) << "CUDA devices visible: " << accelerators.cuda_devices << ", NCCL "
              << (accelerators.nccl_version.empty() ? "none" : accelerators.nccl_version)
              << (accelerators.error.empty() ? "" : ", " + accelerators.error);
  }
  std::string host = absl::GetFlag(FLAGS_host);
  if (host.empty()) {
    absl::StatusOr<std::string> local = ddlm::LocalAddressFor(coordinator);
    if (!local.ok()) {
      std::fprintf(stderr, "ddlm_worker: --coordinator: %s\n", local.status().ToString().c_str());
      return 2;
    }
    host = *local;
  }
  std::string id = absl::GetFlag(FLAGS_worker_id);
  const bool named = !id.empty();
  if (!named) {
    char name[256] = {};
    ::gethostname(name, sizeof(name) - 1);
    id = absl::StrCat(name, "-", device, "-", ::getpid());
  }
  std::string shard_dir = absl::GetFlag(FLAGS_shard_dir);
  const bool default_shard_dir = shard_dir.empty();
  if (default_shard_dir) {
    std::string safe = id;  // A file name.
    for (char& c : safe) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
    }
    const char* tmp = std::getenv("TMPDIR");
    shard_dir = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/ddlm-shards-", safe);
  }

  // Gloo writes to its peers' sockets with plain writev: a peer that died would raise
  // SIGPIPE and kill this worker with it. Ignored, the write fails with EPIPE, the
  // collective returns an error, and the attempt ends the ordinary way.
  ::signal(SIGPIPE, SIG_IGN);

  if (absl::Status s = ddlm::InstallShutdownSignalHandlers(); !s.ok()) {
    std::fprintf(stderr, "ddlm_worker: %s\n", s.ToString().c_str());
    return 1;
  }

  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ddlm::MakeChannelCredentials(ddlm::ClientTransportFromFlags());
  if (!credentials.ok()) {
    std::fprintf(stderr, "ddlm_worker: %s\n", credentials.status().ToString().c_str());
    return 2;
  }
  std::unique_ptr<ddlm::CoordinatorClient> client =
      ddlm::NewGrpcCoordinatorClient(ddlm::NewCoordinatorChannel(coordinator, *credentials));
  ddlm::WorkerAgentOptions options;
  options.worker_id = id;
  options.host = host;
  options.device = device;
  options.on_registered = [&](const ddlm::WorkerRef& ref) {
    std::printf("ddlm_worker %s registered as incarnation %llu (host %s, device %s)\n", ref.worker_id().c_str(),
                static_cast<unsigned long long>(ref.incarnation()), host.c_str(), device.c_str());
    std::fflush(stdout);
  };
  ddlm::JobRunnerOptions runner_options;
  runner_options.device = *resolved;
  runner_options.host = host;
  runner_options.collective_timeout = absl::Seconds(absl::GetFlag(FLAGS_collective_timeout_s));
  runner_options.shard_store = std::make_shared<ddlm::ShardStore>(shard_dir);
  ddlm::CoordinatorClient* coordinator_client = client.get();
  ddlm::RealClock clock;
  ddlm::WorkerAgent agent(
      coordinator_client, &clock, options, [&](const ddlm::Assignment& assignment, const ddlm::WorkerRef& worker) {
        return std::make_shared<ddlm::JobRunner>(
            assignment, worker, coordinator_client, runner_options,
            [device = *resolved, backend = *backend](const ddlm::CollectiveOptions& o, ddlm::KeyValueStore* store) {
              return ddlm::CreateCollective(device, backend, o, store);
            });
      });
  std::thread signal_thread([&] {
    const int sig = ddlm::WaitForShutdownSignal();
    if (sig == 0) return;  // Run returned by itself.
    LOG(INFO) << "signal " << sig << ": shutting down";
    agent.Shutdown();
  });
  const absl::Status status = agent.Run();
  ddlm::WakeShutdownWaiter();
  signal_thread.join();  // Before `agent`, which it refers to, is gone.
  // A worker of no given name never comes back under the same one: its shards go.
  if (default_shard_dir && !named) (void)ddlm::RemoveTree(shard_dir);
  if (!status.ok()) {
    std::fprintf(stderr, "ddlm_worker: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
