#include "coordinator/cli/local_launch.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"
#include "common/base/subprocess.h"
#include "common/transport/certificates.h"
#include "common/transport/grpc_status.h"
#include "common/transport/transport_security.h"
#include "coordinator/cli/job_client.h"
#include "proto/job_service.grpc.pb.h"

namespace ddlm {

absl::StatusOr<LaunchSecrets> EnsureLaunchSecrets(const std::string& state_dir) {
  LaunchSecrets s;
  s.dir = state_dir + "/secrets";
  s.ca_cert = s.dir + "/ca.pem";
  s.server_cert = s.dir + "/server.pem";
  s.server_key = s.dir + "/server.key";
  s.tokens_file = s.dir + "/tokens";
  s.admin_token_file = s.dir + "/admin.token";
  s.worker_token_file = s.dir + "/worker.token";
  if (::access(s.server_key.c_str(), R_OK) != 0 || ::access(s.server_cert.c_str(), R_OK) != 0) {
    DDLM_RETURN_IF_ERROR(MakeCertificates(s.dir, {}).status());
  }
  if (::access(s.tokens_file.c_str(), R_OK) != 0 || ::access(s.admin_token_file.c_str(), R_OK) != 0 ||
      ::access(s.worker_token_file.c_str(), R_OK) != 0) {
    DDLM_ASSIGN_OR_RETURN(std::string admin, NewToken());
    DDLM_ASSIGN_OR_RETURN(std::string worker, NewToken());
    // The token files first: the tokens file names them only once they exist.
    DDLM_RETURN_IF_ERROR(WriteSecretFile(s.admin_token_file, admin + "\n"));
    DDLM_RETURN_IF_ERROR(WriteSecretFile(s.worker_token_file, worker + "\n"));
    DDLM_RETURN_IF_ERROR(
        WriteSecretFile(s.tokens_file, absl::StrCat("# token role name (made by ddlm launch)\n", admin,
                                                    " admin launch\n", worker, " worker local-workers\n")));
  }
  return s;
}

std::string LayoutAdvice(const JobSpec& spec, int workers, const std::string& device) {
  if (device != "cpu" || workers < 2) return "";
  return absl::StrCat("launch: ", workers,
                      " data-parallel workers share this machine's cores. On one machine, "
                      "1 worker with every core is faster (the default LSTM: 1.5x on 2 cores; README, "
                      "Performance): --workers=1 with data.batch_size ",
                      static_cast<int64_t>(spec.data().batch_size()) * workers, " trains on the same batches.\n");
}

LaunchLayout ChooseLaunchLayout(const JobSpec& spec, bool spec_names_num_workers, const std::string& device,
                                int visible_gpus) {
  if (spec_names_num_workers) {
    return {spec.num_workers(), absl::StrCat("launch: ", spec.num_workers(), " worker(s), the spec's num_workers.\n")};
  }
  if (device == "cpu") {
    return {1,
            "launch: 1 worker with every core of this machine: on one machine it trains faster than several "
            "workers sharing the cores (README, Performance). --workers=N or the spec's num_workers "
            "starts N.\n"};
  }
  if (device == "cuda") {
    const int n = std::max(1, visible_gpus);
    return {n, absl::StrCat("launch: ", n, " worker(s), one per GPU.\n")};
  }
  return {1, absl::StrCat("launch: 1 worker on ", device, ".\n")};
}

int CountVisibleGpus() {
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES"); visible != nullptr) {
    int n = 0;
    for (absl::string_view entry : absl::StrSplit(visible, ',', absl::SkipWhitespace())) {
      if (absl::StripAsciiWhitespace(entry) == "-1") break;  // CUDA's "none".
      ++n;
    }
    return n;
  }
  int n = 0;
  for (int i = 0; i < 64; ++i) {
    if (::access(absl::StrCat("/dev/nvidia", i).c_str(), F_OK) == 0) ++n;
  }
  return n;
}

absl::StatusOr<JobState> LaunchLocally(const LocalLaunchOptions& options, std::FILE* out) {
  int num_workers = 0;
  if (options.workers.has_value()) {
    num_workers = *options.workers;
    if (num_workers < 1) return absl::InvalidArgumentError("--workers must be >= 1");
  } else {
    const LaunchLayout layout =
        ChooseLaunchLayout(options.spec, options.spec_names_num_workers, options.device, CountVisibleGpus());
    num_workers = layout.workers;
    std::fputs(layout.reason.c_str(), out);
  }
  JobSpec spec = options.spec;
  spec.set_num_workers(num_workers);
  // Share the machine's cores between the local workers unless the spec says otherwise.
  if (!spec.schedule().has_threads() || spec.schedule().threads() == 0) {
    const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    spec.mutable_schedule()->set_threads(static_cast<int>(std::max(1L, cores / num_workers)));
  }
  for (const std::string& binary : {options.coordinator_binary, options.worker_binary}) {
    if (::access(binary.c_str(), X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat("cannot start ", binary, ": ", std::strerror(errno)));
    }
  }
  if (const std::string advice = LayoutAdvice(spec, num_workers, options.device); !advice.empty()) {
    std::fputs(advice.c_str(), out);
  }
  signal(SIGPIPE, SIG_IGN);
  const std::string log_dir = options.state_dir + "/logs";
  ::mkdir(options.state_dir.c_str(), 0755);
  ::mkdir(log_dir.c_str(), 0755);
  // How the coordinator serves, and how the workers and this launcher reach it.
  std::vector<std::string> coordinator_security = {"--insecure"}, worker_security = {"--insecure"};
  ClientTransport transport;
  transport.insecure = true;
  if (!options.insecure) {
    DDLM_ASSIGN_OR_RETURN(LaunchSecrets secrets, EnsureLaunchSecrets(options.state_dir));
    coordinator_security = {"--tls_cert",       secrets.server_cert, "--tls_key",
                            secrets.server_key, "--tokens_file",     secrets.tokens_file};
    worker_security = {"--ca_cert", secrets.ca_cert, "--token_file", secrets.worker_token_file};
    transport.insecure = false;
    transport.ca_cert = secrets.ca_cert;
    transport.token_file = secrets.admin_token_file;
  }
  DDLM_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials, MakeChannelCredentials(transport));
  // The coordinator prints the port it listens on; its output also goes to its log.
  SubprocessOptions coordinator_output;
  coordinator_output.log_path = log_dir + "/coordinator.log";
  // Corpora are served from the current directory and from where this job's corpus
  // really lies (its files may be symlinks, e.g. under `bazel run`); nothing else.
  std::string data_roots = ".";
  if (char real[PATH_MAX]; ::realpath((spec.data().path() + "/train.txt").c_str(), real) != nullptr) {
    absl::StrAppend(&data_roots, ",", std::string(real).substr(0, std::string(real).rfind('/')));
  }
  std::vector<std::string> coordinator_argv = {options.coordinator_binary,
                                               "--port",
                                               std::to_string(options.port),
                                               "--host",
                                               "127.0.0.1",
                                               "--state_dir",
                                               options.state_dir,
                                               "--data_root",
                                               data_roots};
  coordinator_argv.insert(coordinator_argv.end(), coordinator_security.begin(), coordinator_security.end());
  Subprocess coordinator(coordinator_argv, coordinator_output);
  std::vector<std::unique_ptr<Subprocess>> workers;
  // Every way out of here stops the processes cleanly: workers first, then the coordinator.
  struct StopAll {
    std::vector<std::unique_ptr<Subprocess>>& workers;
    Subprocess& coordinator;
    ~StopAll() {
      for (auto& w : workers) w->Stop();
      coordinator.Stop();
    }
  } stop_all{workers, coordinator};
  std::string line;
  if (!coordinator.WaitForLine("listening on ", &line)) {
    return absl::UnavailableError(absl::StrCat("the coordinator did not start:\n", coordinator.output()));
  }
  std::fprintf(out, "%s\n", line.c_str());
  const std::string rest = line.substr(line.find("listening on ") + std::strlen("listening on "));
  const std::string address = rest.substr(0, rest.find_first_of(" \n"));
  for (int i = 0; i < num_workers; ++i) {
    SubprocessOptions worker_output;  // A worker's log can be long: to its file only.
    worker_output.log_path = absl::StrCat(log_dir, "/worker-", i, ".log");
    worker_output.capture = false;
    std::vector<std::string> argv = {options.worker_binary,
                                     "--coordinator",
                                     address,
                                     "--worker_id",
                                     absl::StrCat("local-", i),
                                     "--shard_dir",  // Kept with the state: a later launch reuses them.
                                     absl::StrCat(options.state_dir, "/shards/local-", i),
                                     "--host",
                                     "127.0.0.1",
                                     "--device",
                                     options.device == "cuda" ? absl::StrCat("cuda:", i) : options.device,
                                     "--collective",
                                     options.collective};
    argv.insert(argv.end(), worker_security.begin(), worker_security.end());
    workers.push_back(std::make_unique<Subprocess>(argv, worker_output));
  }
  std::fprintf(out, "launched %d worker(s); coordinator at %s; logs in %s\n", num_workers, address.c_str(),
               log_dir.c_str());
  if (!options.insecure) {
    std::fprintf(out,
                 "TLS and tokens on; to call it meanwhile: ddlm --coordinator=%s --ca_cert=%s/secrets/ca.pem "
                 "--token_file=%s/secrets/admin.token list\n",
                 address.c_str(), options.state_dir.c_str(), options.state_dir.c_str());
  }
  auto stub = JobService::NewStub(grpc::CreateChannel(address, credentials));
  grpc::ClientContext context;
  SubmitJobRequest request;
  *request.mutable_spec() = spec;
  Job job;
  if (grpc::Status status = stub->SubmitJob(&context, request, &job); !status.ok()) return FromGrpcStatus(status);
  std::fprintf(out, "submitted %s (%s)\n", job.id().c_str(), job.name().c_str());
  std::fflush(out);
  absl::StatusOr<JobState> state = FollowJob(*stub, job.id(), 0, out, options.live_progress);
  if (state.ok() && *state == SUCCEEDED && !spec.checkpoint().path().empty()) {
    // Like main.py's --save: the best model also lands at checkpoint.path (fetched
    // through the coordinator's API, as from any other machine).
    if (absl::Status saved = SaveCheckpoint(*stub, job.id(), "best", spec.checkpoint().path()); saved.ok()) {
      std::fprintf(out, "best model saved to %s\n", spec.checkpoint().path().c_str());
    } else {
      std::fprintf(stderr, "ddlm: could not save the best model: %s\n", saved.ToString().c_str());
    }
  }
  return state;  // stop_all stops the workers, then the coordinator.
}

}  // namespace ddlm
