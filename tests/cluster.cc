#include "tests/cluster.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/config.h"
#include "common/base/file_io.h"
#include "common/transport/certificates.h"
#include "common/transport/grpc_status.h"
#include "common/transport/transport_security.h"

namespace ddlm::testing {

Cluster::Cluster(std::string state_dir, std::vector<std::string> coordinator_flags)
    : state_dir_(std::move(state_dir)), coordinator_flags_(std::move(coordinator_flags)) {}

namespace {

// A process told to stop (SIGTERM) gets this long, then SIGKILL: a test never hangs on
// one that does not stop.
constexpr std::chrono::seconds kStopGrace(30);

void AwaitStopped(Subprocess& process) {
  if (process.WaitForExit(kStopGrace).has_value()) return;
  std::fprintf(stderr, "cluster: pid %d still running %llds after SIGTERM; killing it\n",
               static_cast<int>(process.pid()), static_cast<long long>(kStopGrace.count()));
  process.Signal(SIGKILL);
  process.Wait();
}

}  // namespace

Cluster::~Cluster() {
  // Workers first (SIGTERM lets them report), then the coordinator; each within a bound.
  for (auto& w : workers_) w->Signal(SIGTERM);
  for (auto& w : workers_) AwaitStopped(*w);
  if (coordinator_) {
    coordinator_->Signal(SIGTERM);
    AwaitStopped(*coordinator_);
  }
}

std::string DataRootsForTests() {
  char cwd[PATH_MAX];
  std::string roots = ::getcwd(cwd, sizeof(cwd)) != nullptr ? cwd : ".";
  char real[PATH_MAX];
  if (::realpath("configs/quickstart_data/train.txt", real) != nullptr) {
    const std::string file = real;
    absl::StrAppend(&roots, ",", file.substr(0, file.rfind('/')));
  }
  return roots;
}

bool Cluster::Secure(const std::string& tokens_file_text, const std::string& client_token) {
  ::mkdir(state_dir_.c_str(), 0755);
  absl::StatusOr<CertificateFiles> files = MakeCertificates(state_dir_ + "-pki", {});
  if (!files.ok()) return false;
  const std::string tokens = state_dir_ + "-pki/tokens";
  if (!WriteSecretFile(tokens, tokens_file_text).ok()) return false;
  ca_cert_ = files->ca_cert;
  client_token_ = client_token;
  security_flags_ = {"--tls_cert=" + files->server_cert, "--tls_key=" + files->server_key, "--tokens_file=" + tokens};
  return true;
}

std::string Cluster::TokenFile(const std::string& token) {
  const std::string path = absl::StrCat(state_dir_, "-pki/token-", token_files_++);
  return WriteSecretFile(path, token + "\n").ok() ? path : "";
}

std::shared_ptr<grpc::ChannelCredentials> Cluster::Credentials(const std::string& token) {
  ClientTransport transport;
  transport.insecure = !secure();
  transport.ca_cert = ca_cert_;
  if (secure() && !token.empty()) transport.token_file = TokenFile(token);
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = MakeChannelCredentials(transport);
  return credentials.ok() ? *credentials : nullptr;
}

bool Cluster::Start(int port) {
  std::vector<std::string> argv = {"coordinator/ddlm_coordinator", absl::StrCat("--port=", port), "--host=127.0.0.1",
                                   "--state_dir=" + state_dir_, "--data_root=" + DataRootsForTests()};
  argv.insert(argv.end(), security_flags_.begin(), security_flags_.end());
  argv.insert(argv.end(), coordinator_flags_.begin(), coordinator_flags_.end());
  coordinator_ = std::make_unique<Subprocess>(argv);
  std::string line;
  if (!coordinator_->WaitForLine("listening on ", &line)) return false;
  const std::string rest = line.substr(line.find("listening on ") + 13);
  address_ = rest.substr(0, rest.find(' '));
  if (!absl::SimpleAtoi(address_.substr(address_.rfind(':') + 1), &port_)) return false;
  std::shared_ptr<grpc::ChannelCredentials> credentials = Credentials(client_token_);
  if (credentials == nullptr) return false;
  stub_ = JobService::NewStub(grpc::CreateChannel(address_, credentials));
  return true;
}

bool Cluster::CrashAndRestartCoordinator() {
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait();
  return Start(port_);
}

bool Cluster::AddWorker(const std::string& worker_id, std::vector<std::string> extra_flags,
                        std::vector<std::string> env) {
  // Its shards next to the cluster's state: each test's own, kept across a restart of
  // the worker under the same id.
  std::vector<std::string> argv = {"worker/ddlm_worker",       "--coordinator=" + address_,
                                   "--worker_id=" + worker_id, "--shard_dir=" + state_dir_ + "-shards/" + worker_id,
                                   "--host=127.0.0.1",         secure() ? "--ca_cert=" + ca_cert_ : "--insecure"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  SubprocessOptions options;
  options.env = std::move(env);
  workers_.push_back(std::make_unique<Subprocess>(argv, std::move(options)));
  return workers_.back()->WaitForLine("registered as incarnation");
}

absl::StatusOr<Job> Cluster::Submit(const JobSpec& spec) {
  grpc::ClientContext context;
  SubmitJobRequest request;
  *request.mutable_spec() = spec;
  Job job;
  grpc::Status status = stub_->SubmitJob(&context, request, &job);
  if (!status.ok()) return FromGrpcStatus(status);
  return job;
}

absl::StatusOr<Job> Cluster::Get(const std::string& job_id) {
  grpc::ClientContext context;
  GetJobRequest request;
  request.set_job_id(job_id);
  Job job;
  grpc::Status status = stub_->GetJob(&context, request, &job);
  if (!status.ok()) return FromGrpcStatus(status);
  return job;
}

std::vector<JobEvent> Cluster::Watch(const std::string& job_id, const std::function<bool(const JobEvent&)>& until,
                                     int64_t after_sequence, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  WatchJobRequest request;
  request.set_job_id(job_id);
  request.set_after_sequence(after_sequence);
  auto reader = stub_->WatchJob(&context, request);
  std::vector<JobEvent> events;
  JobEvent event;
  while (reader->Read(&event)) {
    events.push_back(event);
    if (until && until(event)) {
      context.TryCancel();
      break;
    }
  }
  reader->Finish();
  return events;
}

JobSpec SmallJob(int workers, int epochs) {
  JobSpec spec;
  spec.set_name("small");
  spec.mutable_data()->set_path("configs/quickstart_data");
  spec.mutable_data()->set_batch_size(10);
  spec.mutable_model()->set_type(LSTM);
  spec.mutable_model()->set_emsize(32);
  spec.mutable_model()->set_nhid(32);
  spec.mutable_schedule()->set_epochs(epochs);
  spec.mutable_schedule()->set_log_interval(10);
  spec.mutable_schedule()->set_threads(1);
  spec.mutable_schedule()->set_max_batches_per_epoch(40);
  spec.set_num_workers(workers);
  ApplyDefaults(&spec);
  return spec;
}

std::vector<EpochResult> Epochs(const std::vector<JobEvent>& events) {
  std::vector<EpochResult> out;
  for (const JobEvent& e : events) {
    if (e.has_epoch()) out.push_back(e.epoch());
  }
  return out;
}

JobState FinalState(const std::vector<JobEvent>& events) {
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (it->has_state()) return it->state().state();
  }
  return JOB_STATE_UNSPECIFIED;
}

}  // namespace ddlm::testing
