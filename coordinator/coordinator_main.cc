// ddlm_coordinator: the control plane. Serves ddlm.JobService (users, grpcurl) and
// ddlm.WorkerService (workers) on one port, with gRPC server reflection on, and keeps
// jobs, metrics and checkpoints in --state_dir.
//
//   ddlm_coordinator --port 50051 --state_dir /var/lib/ddlm --tls_cert server.pem
//       --tls_key server.key --tokens_file tokens [--tls_client_ca ca.pem]
//   ddlm_coordinator --insecure ...   plain text, no tokens: a trusted network only
//
// Prints "ddlm_coordinator listening on HOST:PORT" once serving (with --port 0, the
// port the system chose), and "ddlm_coordinator metrics on http://HOST:PORT/metrics"
// with --metrics_port. Each job's scalars go to STATE_DIR/tensorboard/<job id>/ as
// TensorBoard event files. SIGINT or SIGTERM shuts down cleanly.

#include <glog/logging.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/base/cli.h"
#include "common/base/clock.h"
#include "common/base/file_io.h"
#include "common/base/shutdown_signal.h"
#include "common/training/threading.h"
#include "common/transport/transport_security.h"
#include "coordinator/access_control.h"
#include "coordinator/coordinator.h"
#include "coordinator/metrics/coordinator_metrics.h"
#include "coordinator/metrics/metrics_http_server.h"
#include "coordinator/metrics/rpc_stats.h"
#include "coordinator/rpc/rpc_stats_interceptor.h"
#include "coordinator/rpc/services.h"
#include "coordinator/tensorboard/tensorboard_exporter.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on.");
ABSL_FLAG(int32_t, port, 50051, "Port to listen on (0: any free port, printed at start).");
ABSL_FLAG(std::string, state_dir, "ddlm_state", "Directory for job records and checkpoints.");
ABSL_FLAG(int32_t, heartbeat_interval_ms, 1000, "How often workers heartbeat.");
ABSL_FLAG(std::vector<std::string>, data_root, {},
          "Comma-separated directories that jobs' data.path must lie in (no '..', no symlinks "
          "leading out); default: the working directory. Any other path is refused.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate (chain) the coordinator serves TLS with.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA: every client must present a certificate it signed (mutual TLS).");
ABSL_FLAG(std::string, tokens_file, "",
          "Bearer tokens, one 'TOKEN ROLE NAME' a line (roles: admin, user, worker); without it, "
          "any client that connects may call anything.");
ABSL_FLAG(bool, insecure, false, "Serve plain text (no TLS, so no tokens): a trusted network only.");
ABSL_FLAG(int32_t, max_rpc_threads, 4096,
          "Threads serving blocking calls at once (a gRPC resource quota); calls beyond get "
          "RESOURCE_EXHAUSTED. Streams (WatchJob, StreamCommands) hold none.");
ABSL_FLAG(int32_t, max_watch_streams, 10000, "WatchJob streams open at once; more get RESOURCE_EXHAUSTED.");
ABSL_FLAG(int32_t, max_transfer_s, 600,
          "A checkpoint or shard transfer still running after this long is cancelled (a stalled "
          "client holds a server thread no longer).");
ABSL_FLAG(std::string, tensorboard_dir, "",
          "Where each job's scalars are written as TensorBoard event files, a run per job "
          "(default: STATE_DIR/tensorboard; 'none': not written).");
ABSL_FLAG(int32_t, metrics_port, -1,
          "Serve Prometheus metrics at http://METRICS_HOST:PORT/metrics (0: any free port, printed "
          "at start; -1: off).");
ABSL_FLAG(std::string, metrics_host, "127.0.0.1",
          "IPv4 address for --metrics_port. Plain HTTP with no authentication: job names and "
          "figures are readable by whoever reaches it, so widen it only to your monitoring network.");
ABSL_FLAG(int32_t, heartbeat_timeout_ms, 15000,
          "A worker silent this long is declared dead and its job attempt fails.");

namespace {

constexpr char kUsage[] = "ddlm_coordinator [--host H] [--port P] [--state_dir DIR]: the ddlm control plane";

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "ddlm_coordinator: %s\n", status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  ddlm::ParseFlagsOrExit(argc, argv, "ddlm_coordinator", kUsage);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (absl::GetFlag(FLAGS_port) < 0 || absl::GetFlag(FLAGS_port) > 65535) {
    return Fail(
        absl::InvalidArgumentError(absl::StrCat("--port must be in [0, 65535], got ", absl::GetFlag(FLAGS_port))));
  }
  if (absl::GetFlag(FLAGS_heartbeat_interval_ms) < 1 ||
      absl::GetFlag(FLAGS_heartbeat_timeout_ms) <= absl::GetFlag(FLAGS_heartbeat_interval_ms)) {
    return Fail(
        absl::InvalidArgumentError("--heartbeat_timeout_ms must exceed --heartbeat_interval_ms, which must be >= 1"));
  }

  // SIGINT and SIGTERM, on whichever thread they land, wake the main thread (below).
  if (absl::Status s = ddlm::InstallShutdownSignalHandlers(); !s.ok()) return Fail(s);

  // Generate samples on the RPC threads: one BLAS and one LibTorch thread each, so that
  // sampling never takes every core from the control plane.
  ddlm::ConfigureThreads(/*blas_threads=*/1, /*torch_threads=*/1);

  ddlm::ServerTransport transport;
  transport.insecure = absl::GetFlag(FLAGS_insecure);
  transport.cert = absl::GetFlag(FLAGS_tls_cert);
  transport.key = absl::GetFlag(FLAGS_tls_key);
  transport.client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = ddlm::MakeServerCredentials(transport);
  if (!credentials.ok()) return Fail(credentials.status());
  ddlm::AccessControl access;
  if (!absl::GetFlag(FLAGS_tokens_file).empty()) {
    if (transport.insecure) {
      return Fail(absl::InvalidArgumentError(
          "--tokens_file needs TLS: clients send tokens only over TLS (drop --insecure, give --tls_cert)"));
    }
    absl::StatusOr<ddlm::AccessControl> loaded = ddlm::AccessControl::Load(absl::GetFlag(FLAGS_tokens_file));
    if (!loaded.ok()) return Fail(loaded.status());
    access = *std::move(loaded);
  }

  ddlm::RealClock clock;
  ddlm::CoordinatorOptions options;
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  std::unique_ptr<ddlm::TensorBoardExporter> tensorboard;
  std::string tensorboard_dir = absl::GetFlag(FLAGS_tensorboard_dir);
  if (tensorboard_dir.empty()) tensorboard_dir = options.state_dir + "/tensorboard";
  if (tensorboard_dir != "none") {
    // A directory that cannot be made is a bad flag: say so now, not at the first event.
    if (absl::Status s = ddlm::MakeDirectories(tensorboard_dir); !s.ok()) {
      return Fail(absl::InvalidArgumentError(absl::StrCat("--tensorboard_dir: ", s.message())));
    }
    char host[256] = "localhost";
    ::gethostname(host, sizeof(host) - 1);
    tensorboard = std::make_unique<ddlm::TensorBoardExporter>(tensorboard_dir, host);
    options.event_observer = tensorboard.get();
  }
  options.data_roots = absl::GetFlag(FLAGS_data_root);
  options.heartbeat_interval = absl::Milliseconds(absl::GetFlag(FLAGS_heartbeat_interval_ms));
  options.heartbeat_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_heartbeat_timeout_ms));
  options.max_event_streams = absl::GetFlag(FLAGS_max_watch_streams);
  if (absl::GetFlag(FLAGS_max_rpc_threads) < 8 || options.max_event_streams < 1) {
    return Fail(absl::InvalidArgumentError("--max_rpc_threads must be >= 8 and --max_watch_streams >= 1"));
  }
  absl::StatusOr<std::unique_ptr<ddlm::Coordinator>> coordinator = ddlm::Coordinator::Create(options, &clock);
  if (!coordinator.ok()) return Fail(coordinator.status());

  if (absl::GetFlag(FLAGS_max_transfer_s) < 1) return Fail(absl::InvalidArgumentError("--max_transfer_s must be >= 1"));
  ddlm::CallDeadlines transfers;
  const absl::Duration max_transfer = absl::Seconds(absl::GetFlag(FLAGS_max_transfer_s));
  ddlm::JobServiceImpl job_service(coordinator->get(), &access, &transfers, max_transfer);
  ddlm::WorkerServiceImpl worker_service(coordinator->get(), &access, &transfers, max_transfer);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  ddlm::RpcStats rpc_stats;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<ddlm::RpcStatsInterceptorFactory>(&rpc_stats));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  int port = 0;
  const std::string address = absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port));
  builder.AddListeningPort(address, *credentials, &port);
  builder.RegisterService(&job_service);
  builder.RegisterService(&worker_service);
  // Bounded threads for blocking calls, and streams per connection.
  grpc::ResourceQuota quota("ddlm_coordinator");
  quota.SetMaxThreads(absl::GetFlag(FLAGS_max_rpc_threads));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 1000);
  // Requests are small (checkpoints come in 1 MiB chunks); replies carry a vocabulary.
  builder.SetMaxReceiveMessageSize(8 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return Fail(absl::UnavailableError(absl::StrCat("cannot listen on ", address)));
  }
  std::printf("ddlm_coordinator listening on %s:%d (state in %s; %s%s)\n", absl::GetFlag(FLAGS_host).c_str(), port,
              options.state_dir.c_str(), transport.insecure ? "plain text" : "TLS",
              transport.insecure ? ""
              : access.open()    ? ", no tokens"
                                 : ", tokens required");
  std::unique_ptr<ddlm::MetricsHttpServer> metrics;
  if (absl::GetFlag(FLAGS_metrics_port) >= 0) {
    ddlm::Coordinator* c = coordinator->get();
    absl::StatusOr<std::unique_ptr<ddlm::MetricsHttpServer>> started = ddlm::MetricsHttpServer::Start(
        absl::GetFlag(FLAGS_metrics_host), absl::GetFlag(FLAGS_metrics_port),
        [c, &rpc_stats] { return ddlm::RenderCoordinatorMetrics(c->ListJobs(), c->ListWorkers(), &rpc_stats); });
    if (!started.ok()) return Fail(started.status());
    metrics = *std::move(started);
    std::printf("ddlm_coordinator metrics on http://%s:%d/metrics\n", absl::GetFlag(FLAGS_metrics_host).c_str(),
                metrics->port());
  }
  std::fflush(stdout);

  absl::Notification stopping;
  std::thread sweeper([&] {
    while (!stopping.WaitForNotificationWithTimeout(options.heartbeat_interval)) {
      (*coordinator)->CheckHeartbeats();
      if (const int n = transfers.CancelExpired(absl::Now()); n > 0) {
        LOG(WARNING) << n << " transfer(s) ran past --max_transfer_s and were cancelled";
      }
    }
  });
  const int sig = ddlm::WaitForShutdownSignal();
  LOG(INFO) << "signal " << sig << ": shutting down";
  stopping.Notify();
  (*coordinator)->Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  sweeper.join();
  server.reset();
  metrics.reset();
  (*coordinator).reset();  // Before the exporter it reports to.
  tensorboard.reset();
  return 0;
}
