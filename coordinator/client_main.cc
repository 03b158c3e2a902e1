// ddlm: the command-line client of a ddlm coordinator, and a one-command local launcher.
//
//   ddlm launch --config F [--workers 2] [--device cpu|cuda|cuda:N]
//                                             coordinator + N local workers, run F, stop
//   ddlm submit --config F [--watch]          queue a job
//   ddlm list | status JOB | watch JOB | cancel JOB | delete JOB | checkpoints JOB | workers
//   ddlm resume JOB [--checkpoint ID] [--epochs N] [--workers N] [--watch]
//   ddlm generate JOB [--checkpoint best|latest|ID] [--words N] [--temperature T]
//   ddlm fetch JOB --out FILE [--checkpoint best|latest|ID]   save a kept checkpoint
//
// Every command but launch talks to --coordinator (default localhost:50051). The
// same calls work from grpcurl: see README.md.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/chunked_transfer.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/file_io.h"
#include "common/grpc_status.h"
#include "common/subprocess.h"
#include "proto/job_service.grpc.pb.h"

ABSL_FLAG(std::string, coordinator, "localhost:50051", "The coordinator's host:port.");
ABSL_FLAG(std::string, config, "", "submit/launch: text-format JobSpec file.");
ABSL_FLAG(bool, watch, false, "submit/resume: follow the job until it ends.");
ABSL_FLAG(bool, json, false, "Print replies as JSON instead of text format.");
ABSL_FLAG(std::string, checkpoint, "", "resume/generate: checkpoint id (or best/latest).");
ABSL_FLAG(int32_t, epochs, 0, "resume: train to this many epochs in total (0: the job's).");
ABSL_FLAG(int32_t, words, 100, "generate: number of words.");
ABSL_FLAG(double, temperature, 1.0, "generate: temperature.");
ABSL_FLAG(int32_t, top_k, 0, "generate: sample from the k likeliest words (0: all).");
ABSL_FLAG(uint64_t, seed, 1111, "generate: random seed.");
ABSL_FLAG(int32_t, workers, 2,
          "launch: local workers to start. resume: go on with this many workers (from an epoch end "
          "if the checkpoint was written by another number).");
ABSL_FLAG(std::string, device, "cpu",
          "launch: the workers' device: cpu, cuda (worker i on cuda:i, one per GPU) or cuda:N "
          "(all on GPU N; with --collective gloo).");
ABSL_FLAG(std::string, collective, "auto", "launch: the workers' --collective (auto, gloo, nccl).");
ABSL_FLAG(std::string, state_dir, "ddlm_state", "launch: the coordinator's state directory.");
ABSL_FLAG(std::string, out, "", "fetch: where to write the checkpoint file.");
ABSL_FLAG(int32_t, port, 0, "launch: the coordinator's port (0: any free port).");

namespace {

constexpr char kUsage[] = R"(ddlm COMMAND [ARGS] [--coordinator HOST:PORT]
commands:
  launch --config F [--workers N] [--device cpu|cuda|cuda:N] [--collective auto|gloo|nccl]
                                    start a coordinator and N local workers, run F
  submit --config F [--watch]       queue a job on a running coordinator
  list                              all jobs
  status JOB                        one job
  watch JOB                         follow a job's events until it ends
  cancel JOB
  delete JOB                        remove a finished job and its checkpoints
  resume JOB [--checkpoint ID] [--epochs N] [--workers N] [--watch]
  checkpoints JOB
  generate JOB [--checkpoint best|latest|ID] [--words N] [--temperature T] [--top_k K]
  fetch JOB --out FILE [--checkpoint best|latest|ID]
                                    save a kept checkpoint (for ddlm_generate, ddlm_train)
  workers                           registered workers)";

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "ddlm: %s\n", status.ToString().c_str());
  return 1;
}

int Fail(const grpc::Status& status) { return Fail(ddlm::FromGrpcStatus(status)); }

void Print(const google::protobuf::Message& message) {
  std::string text;
  if (absl::GetFlag(FLAGS_json)) {
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(message, &text, options);
  } else {
    google::protobuf::TextFormat::PrintToString(message, &text);
  }
  std::printf("%s", text.c_str());
  if (!text.empty() && text.back() != '\n') std::printf("\n");
}

std::string Describe(const ddlm::JobEvent& event) {
  if (event.has_state()) {
    return absl::StrCat("| job ", ddlm::JobState_Name(event.state().state()),
                        event.state().message().empty() ? "" : ": ", event.state().message());
  }
  if (event.has_training()) {
    const ddlm::TrainingMetrics& m = event.training();
    return absl::StrFormat(
        "| epoch %3d | %5d/%5d batches | lr %.2f | ms/batch %6.1f | loss %5.2f | ppl %8.2f | %.0f tok/s",
        m.epoch(), m.batch(), m.num_batches(), m.lr(), m.ms_per_batch(), m.loss(), m.ppl(),
        m.tokens_per_second());
  }
  if (event.has_epoch()) {
    const ddlm::EpochResult& e = event.epoch();
    return absl::StrFormat(
        "| end of epoch %3d | time: %5.2fs | valid loss %5.2f | valid ppl %8.2f | next lr %.2f%s",
        e.epoch(), e.seconds(), e.val_loss(), e.val_ppl(), e.lr(), e.best() ? " | best" : "");
  }
  if (event.has_checkpoint()) {
    const ddlm::CheckpointInfo& c = event.checkpoint();
    return absl::StrFormat("| checkpoint %s kept (%d bytes, crc32 %08x)%s", c.id(), c.size_bytes(),
                           c.crc32(), c.best() ? " | best" : "");
  }
  if (event.has_test()) {
    return absl::StrFormat("| End of training | test loss %5.2f | test ppl %8.2f",
                           event.test().test_loss(), event.test().test_ppl());
  }
  return "";
}

// Follows the job to its end; exit code 0 only if it SUCCEEDED.
int Watch(ddlm::JobService::Stub& stub, const std::string& job_id, int64_t after = 0) {
  ddlm::JobState last = ddlm::JOB_STATE_UNSPECIFIED;
  for (int tries = 0; tries < 3; ++tries) {
    grpc::ClientContext context;
    ddlm::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_after_sequence(after);
    auto reader = stub.WatchJob(&context, request);
    ddlm::JobEvent event;
    while (reader->Read(&event)) {
      after = event.sequence();
      if (event.has_state()) last = event.state().state();
      std::printf("%s\n", Describe(event).c_str());
      std::fflush(stdout);
    }
    grpc::Status status = reader->Finish();
    if (status.ok()) return last == ddlm::SUCCEEDED ? 0 : 1;
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return Fail(status);
  }
  return Fail(absl::UnavailableError("lost the coordinator while watching"));
}

absl::StatusOr<ddlm::JobSpec> ReadSpec() {
  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) return absl::InvalidArgumentError("--config is required");
  return ddlm::LoadJobSpec(path);
}

// Writes the job's kept checkpoint `which` to `path` (atomically).
absl::Status FetchCheckpoint(ddlm::JobService::Stub& stub, const std::string& job_id,
                             const std::string& which, const std::string& path) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  ddlm::FetchCheckpointRequest request;
  request.set_job_id(job_id);
  request.set_checkpoint(which);
  absl::StatusOr<std::string> bytes =
      ddlm::CollectChunks(stub.FetchCheckpoint(&context, request), absl::StrCat(job_id, "'s checkpoint"));
  if (!bytes.ok()) return bytes.status();
  return ddlm::WriteFileAtomically(path, *bytes);
}

// ---- launch: a coordinator and N workers on this machine.

std::string SiblingBinary(const std::string& package, const std::string& name) {
  // bazel-bin/coordinator/ddlm -> bazel-bin/<package>/<name>
  char self[4096] = {};
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string dir = n > 0 ? std::string(self, static_cast<size_t>(n)) : "";
  dir = dir.substr(0, dir.rfind('/'));  // .../coordinator
  dir = dir.substr(0, dir.rfind('/'));  // .../bin
  return absl::StrCat(dir, "/", package, "/", name);
}

int Launch() {
  absl::StatusOr<ddlm::JobSpec> spec = ReadSpec();
  if (!spec.ok()) return Fail(spec.status());
  const int workers = absl::GetFlag(FLAGS_workers);
  if (workers < 1) return Fail(absl::InvalidArgumentError("--workers must be >= 1"));
  spec->set_num_workers(workers);
  // Share the machine's cores between the local workers unless the spec says otherwise.
  if (!spec->schedule().has_threads() || spec->schedule().threads() == 0) {
    const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    spec->mutable_schedule()->set_threads(static_cast<int>(std::max(1L, cores / workers)));
  }
  const std::string coordinator_bin = SiblingBinary("coordinator", "ddlm_coordinator");
  const std::string worker_bin = SiblingBinary("worker", "ddlm_worker");
  for (const std::string& binary : {coordinator_bin, worker_bin}) {
    if (::access(binary.c_str(), X_OK) != 0) {
      return Fail(absl::NotFoundError(absl::StrCat("cannot start ", binary, ": ", std::strerror(errno))));
    }
  }
  signal(SIGPIPE, SIG_IGN);
  const std::string state_dir = absl::GetFlag(FLAGS_state_dir);
  const std::string log_dir = state_dir + "/logs";
  ::mkdir(state_dir.c_str(), 0755);
  ::mkdir(log_dir.c_str(), 0755);
  // The coordinator prints the port it listens on; its output also goes to its log.
  ddlm::SubprocessOptions coordinator_output;
  coordinator_output.log_path = log_dir + "/coordinator.log";
  // Corpora are served from the current directory and from where this job's corpus
  // really lies (its files may be symlinks, e.g. under `bazel run`); nothing else.
  std::string data_roots = ".";
  if (char real[PATH_MAX]; ::realpath((spec->data().path() + "/train.txt").c_str(), real) != nullptr) {
    absl::StrAppend(&data_roots, ",", std::string(real).substr(0, std::string(real).rfind('/')));
  }
  ddlm::Subprocess coordinator({coordinator_bin, "--port", std::to_string(absl::GetFlag(FLAGS_port)),
                                "--host", "127.0.0.1", "--state_dir", state_dir, "--data_root", data_roots},
                               coordinator_output);
  std::vector<std::unique_ptr<ddlm::Subprocess>> children;
  // Every way out of here stops the processes cleanly: workers first, then the coordinator.
  struct StopAll {
    std::vector<std::unique_ptr<ddlm::Subprocess>>& workers;
    ddlm::Subprocess& coordinator;
    ~StopAll() {
      for (auto& w : workers) w->Stop();
      coordinator.Stop();
    }
  } stop_all{children, coordinator};
  std::string line;
  if (!coordinator.WaitForLine("listening on ", &line)) {
    return Fail(absl::UnavailableError(
        absl::StrCat("the coordinator did not start:\n", coordinator.output())));
  }
  std::printf("%s\n", line.c_str());
  const std::string rest = line.substr(line.find("listening on ") + std::strlen("listening on "));
  const std::string address = rest.substr(0, rest.find_first_of(" \n"));
  const std::string device = absl::GetFlag(FLAGS_device);
  for (int i = 0; i < workers; ++i) {
    ddlm::SubprocessOptions worker_output;  // A worker's log can be long: to its file only.
    worker_output.log_path = absl::StrCat(log_dir, "/worker-", i, ".log");
    worker_output.capture = false;
    children.push_back(std::make_unique<ddlm::Subprocess>(
        std::vector<std::string>{worker_bin, "--coordinator", address, "--worker_id", absl::StrCat("local-", i),
                                 "--host", "127.0.0.1", "--device",
                                 device == "cuda" ? absl::StrCat("cuda:", i) : device,
                                 "--collective", absl::GetFlag(FLAGS_collective)},
        worker_output));
  }
  std::printf("launched %d worker(s); coordinator at %s; logs in %s\n", workers, address.c_str(),
              log_dir.c_str());
  auto stub = ddlm::JobService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  ddlm::SubmitJobRequest request;
  *request.mutable_spec() = *spec;
  ddlm::Job job;
  grpc::Status status = stub->SubmitJob(&context, request, &job);
  if (!status.ok()) return Fail(status);
  std::printf("submitted %s (%s)\n", job.id().c_str(), job.name().c_str());
  std::fflush(stdout);
  const int rc = Watch(*stub, job.id());
  if (rc == 0 && !spec->checkpoint().path().empty()) {
    // Like main.py's --save: the best model also lands at checkpoint.path (fetched
    // through the coordinator's API, as from any other machine).
    absl::Status saved = FetchCheckpoint(*stub, job.id(), "best", spec->checkpoint().path());
    if (saved.ok()) {
      std::printf("best model saved to %s\n", spec->checkpoint().path().c_str());
    } else {
      std::fprintf(stderr, "ddlm: could not save the best model: %s\n", saved.ToString().c_str());
    }
  }
  return rc;  // stop_all stops the workers, then the coordinator.
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  ddlm::ChdirToBuildWorkingDirectory();
  std::vector<std::string> storage;
  std::vector<char*> normalized;
  const std::set<std::string> given = ddlm::NormalizeFlagNames(argc, argv, &storage, &normalized);
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(normalized.size()) - 1, normalized.data());
  if (positional.size() < 2) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  const std::string command = positional[1];
  const std::string arg = positional.size() > 2 ? positional[2] : "";
  if (command == "launch") return Launch();

  auto stub = ddlm::JobService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_coordinator), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  auto need_job = [&]() -> bool {
    if (!arg.empty()) return true;
    std::fprintf(stderr, "ddlm %s: give a job id (see `ddlm list`)\n", command.c_str());
    return false;
  };
  grpc::Status status;
  if (command == "submit") {
    absl::StatusOr<ddlm::JobSpec> spec = ReadSpec();
    if (!spec.ok()) return Fail(spec.status());
    ddlm::SubmitJobRequest request;
    *request.mutable_spec() = *spec;
    ddlm::Job job;
    if (status = stub->SubmitJob(&context, request, &job); !status.ok()) return Fail(status);
    std::printf("submitted %s\n", job.id().c_str());
    return absl::GetFlag(FLAGS_watch) ? Watch(*stub, job.id()) : 0;
  }
  if (command == "list") {
    ddlm::ListJobsResponse response;
    if (status = stub->ListJobs(&context, {}, &response); !status.ok()) return Fail(status);
    if (absl::GetFlag(FLAGS_json)) {
      Print(response);
      return 0;
    }
    std::printf("%-8s %-10s %-20s %7s %6s %10s %10s  %s\n", "JOB", "STATE", "NAME", "ATTEMPT",
                "EPOCH", "BEST PPL", "TEST PPL", "MESSAGE");
    for (const ddlm::Job& j : response.jobs()) {
      std::printf("%-8s %-10s %-20s %7d %6d %10s %10s  %s\n", j.id().c_str(),
                  ddlm::JobState_Name(j.state()).c_str(), j.name().c_str(), j.attempt(), j.epoch(),
                  j.has_best_val_ppl() ? absl::StrFormat("%.2f", j.best_val_ppl()).c_str() : "-",
                  j.has_test_ppl() ? absl::StrFormat("%.2f", j.test_ppl()).c_str() : "-",
                  j.message().c_str());
    }
    return 0;
  }
  if (command == "status" || command == "cancel") {
    if (!need_job()) return 2;
    ddlm::Job job;
    if (command == "status") {
      ddlm::GetJobRequest request;
      request.set_job_id(arg);
      status = stub->GetJob(&context, request, &job);
    } else {
      ddlm::CancelJobRequest request;
      request.set_job_id(arg);
      status = stub->CancelJob(&context, request, &job);
    }
    if (!status.ok()) return Fail(status);
    Print(job);
    return 0;
  }
  if (command == "delete") {
    if (!need_job()) return 2;
    ddlm::DeleteJobRequest request;
    request.set_job_id(arg);
    ddlm::DeleteJobResponse response;
    status = stub->DeleteJob(&context, request, &response);
    if (!status.ok()) return Fail(status);
    std::printf("deleted %s\n", arg.c_str());
    return 0;
  }
  if (command == "watch") {
    if (!need_job()) return 2;
    return Watch(*stub, arg);
  }
  if (command == "resume") {
    if (!need_job()) return 2;
    // Watch only what follows the resume, not the earlier attempts' history.
    int64_t after = 0;
    {
      grpc::ClientContext get_context;
      ddlm::GetJobRequest get;
      get.set_job_id(arg);
      ddlm::Job before;
      if (stub->GetJob(&get_context, get, &before).ok()) after = before.last_event_sequence();
    }
    if (absl::GetFlag(FLAGS_epochs) < 0) {
      std::fprintf(stderr, "ddlm resume: --epochs must be >= 1 (or 0: the job's own), got %d\n",
                   absl::GetFlag(FLAGS_epochs));
      return 2;
    }
    ddlm::ResumeJobRequest request;
    request.set_job_id(arg);
    request.set_checkpoint_id(absl::GetFlag(FLAGS_checkpoint));
    if (absl::GetFlag(FLAGS_epochs) > 0) request.set_epochs(absl::GetFlag(FLAGS_epochs));
    if (given.count("workers")) request.set_num_workers(absl::GetFlag(FLAGS_workers));
    ddlm::Job job;
    if (status = stub->ResumeJob(&context, request, &job); !status.ok()) return Fail(status);
    std::printf("resumed %s from %s (attempt %d)\n", job.id().c_str(), job.resumed_from().c_str(),
                job.attempt() + (job.state() == ddlm::QUEUED ? 1 : 0));
    return absl::GetFlag(FLAGS_watch) ? Watch(*stub, job.id(), after) : 0;
  }
  if (command == "checkpoints") {
    if (!need_job()) return 2;
    ddlm::ListCheckpointsRequest request;
    request.set_job_id(arg);
    ddlm::ListCheckpointsResponse response;
    if (status = stub->ListCheckpoints(&context, request, &response); !status.ok()) return Fail(status);
    Print(response);
    return 0;
  }
  if (command == "generate") {
    if (!need_job()) return 2;
    ddlm::GenerateRequest request;
    request.set_job_id(arg);
    request.set_checkpoint(absl::GetFlag(FLAGS_checkpoint));
    request.set_words(absl::GetFlag(FLAGS_words));
    request.set_temperature(absl::GetFlag(FLAGS_temperature));
    request.set_top_k(absl::GetFlag(FLAGS_top_k));
    request.set_seed(absl::GetFlag(FLAGS_seed));
    ddlm::GenerateResponse response;
    if (status = stub->Generate(&context, request, &response); !status.ok()) return Fail(status);
    std::printf("%s\n", response.text().c_str());
    return 0;
  }
  if (command == "fetch") {
    if (!need_job()) return 2;
    const std::string out = absl::GetFlag(FLAGS_out);
    if (out.empty()) {
      std::fprintf(stderr, "ddlm fetch: give --out FILE\n");
      return 2;
    }
    absl::Status saved = FetchCheckpoint(*stub, arg, absl::GetFlag(FLAGS_checkpoint), out);
    if (!saved.ok()) return Fail(saved);
    std::printf("%s's %s checkpoint saved to %s\n", arg.c_str(),
                absl::GetFlag(FLAGS_checkpoint).empty() ? "best" : absl::GetFlag(FLAGS_checkpoint).c_str(),
                out.c_str());
    return 0;
  }
  if (command == "workers") {
    ddlm::ListWorkersResponse response;
    if (status = stub->ListWorkers(&context, {}, &response); !status.ok()) return Fail(status);
    Print(response);
    return 0;
  }
  std::fprintf(stderr, "ddlm: unknown command '%s'\n%s\n", command.c_str(), kUsage);
  return 2;
}
