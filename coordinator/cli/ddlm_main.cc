// ddlm: the command-line client of a ddlm coordinator, and a one-command local launcher
// (local_launch.h). Flags and dispatch only: what the commands show is in job_text.h,
// the calls that take more than one RPC in job_client.h.
//
//   ddlm launch --config F [--workers 2] [--device cpu|cuda|cuda:N]
//                                             coordinator + N local workers, run F, stop
//   ddlm submit --config F [--watch]          queue a job
//   ddlm list | status JOB [--json] | watch JOB [--plain] | cancel JOB | delete JOB
//   ddlm checkpoints JOB | workers
//   ddlm plot JOB --out curves.png            training curves as a PNG (gnuplot)
//   ddlm resume JOB [--checkpoint ID] [--epochs N] [--workers N] [--watch]
//   ddlm generate JOB [--checkpoint best|latest|ID] [--words N] [--temperature T]
//   ddlm fetch JOB --out FILE [--checkpoint best|latest|ID]   save a kept checkpoint
//   ddlm certs --out DIR --hosts H1,H2 | token                TLS files and tokens
//
// Every command but launch, certs and token talks to --coordinator (default
// localhost:50051) over TLS with a token (--ca_cert, --token_file), or with --insecure
// in plain text. The same calls work from grpcurl: see README.md.

#include <unistd.h>

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
#include "common/base/cli.h"
#include "common/base/config.h"
#include "common/base/file_io.h"
#include "common/base/subprocess.h"
#include "common/transport/certificates.h"
#include "common/transport/grpc_status.h"
#include "common/transport/transport_flags.h"
#include "common/inference/render.h"
#include "common/plots/heatmap_plot.h"
#include "coordinator/cli/curves_plot.h"
#include "coordinator/cli/job_client.h"
#include "coordinator/cli/job_text.h"
#include "coordinator/cli/local_launch.h"
#include "coordinator/cli/progress_display.h"
#include "proto/job_service.grpc.pb.h"

ABSL_FLAG(std::string, coordinator, "localhost:50051", "The coordinator's host:port.");
ABSL_FLAG(std::string, config, "", "submit/launch: text-format JobSpec file.");
ABSL_FLAG(bool, watch, false, "submit/resume: follow the job until it ends.");
ABSL_FLAG(bool, json, false, "Print replies as JSON (status: the whole job, for scripts).");
ABSL_FLAG(bool, plain, false,
          "watch/launch/submit --watch: one line per event even on a terminal (no live status line).");
ABSL_FLAG(std::string, checkpoint, "", "resume/generate: checkpoint id (or best/latest).");
ABSL_FLAG(int32_t, epochs, 0, "resume: train to this many epochs in total (0: the job's).");
ABSL_FLAG(int32_t, words, 100, "generate: number of words.");
ABSL_FLAG(double, temperature, 1.0, "generate: temperature.");
ABSL_FLAG(int32_t, top_k, 0, "generate: sample from the k likeliest words (0: all).");
ABSL_FLAG(uint64_t, seed, 1111, "generate: random seed.");
ABSL_FLAG(std::string, prompt, "", "generate: text the model reads first (empty: a random first word).");
ABSL_FLAG(double, top_p, 1.0, "generate: sample from the likeliest words holding this probability (1: all).");
ABSL_FLAG(double, repetition_penalty, 1.0, "generate: penalty (>= 1) on words already seen.");
ABSL_FLAG(bool, stop_at_eos, false, "generate: stop after the first <eos>.");
ABSL_FLAG(bool, stream, false, "generate: print each word as it is made.");
ABSL_FLAG(std::string, text, "", "score/attention/logprobs: the text.");
ABSL_FLAG(std::string, file, "", "score: a file on the coordinator's host, inside its --data_root.");
ABSL_FLAG(int32_t, top, 0, "score: the N likeliest next words at each position; logprobs: rows (default 8).");
ABSL_FLAG(bool, tokens, false, "score --file: list each token too.");
ABSL_FLAG(int32_t, layer, 0, "attention: the layer (0-based).");
ABSL_FLAG(int32_t, head, 0, "attention: the head (0-based).");
ABSL_FLAG(int32_t, workers, 2,
          "launch: local workers to start (unset: the spec's num_workers, else 1 on the CPU, "
          "which on one machine trains faster than several sharing its cores, and one per GPU "
          "with --device=cuda). submit: the job's num_workers, whatever the spec says. "
          "resume: go on with this many workers (from an epoch end if the checkpoint was written by "
          "another number).");
ABSL_FLAG(int32_t, threads, 0,
          "submit: each worker's BLAS threads (schedule.threads) when the spec leaves it at 0 (one "
          "per core), as a scheduler that gives each worker a few cores wants.");
ABSL_FLAG(std::string, device, "cpu",
          "launch: the workers' device: cpu, cuda (worker i on cuda:i, one per GPU) or cuda:N "
          "(all on GPU N; with --collective gloo).");
ABSL_FLAG(std::string, collective, "auto", "launch: the workers' --collective (auto, gloo, nccl).");
ABSL_FLAG(std::string, state_dir, "ddlm_state", "launch: the coordinator's state directory.");
ABSL_FLAG(std::string, out, "", "fetch: where to write the checkpoint file. plot: the PNG to write.");
ABSL_FLAG(int32_t, port, 0, "launch: the coordinator's port (0: any free port).");
ABSL_FLAG(std::vector<std::string>, hosts, {},
          "certs: the coordinator's host names or addresses (comma-separated) its certificate is for.");

namespace {

constexpr char kUsage[] = R"(ddlm COMMAND [ARGS] [--coordinator HOST:PORT]
commands:
  launch --config F [--workers N] [--device cpu|cuda|cuda:N] [--collective auto|gloo|nccl]
                                    start a coordinator and N local workers, run F
  submit --config F [--workers N] [--threads T] [--watch]
                                    queue a job on a running coordinator
  list                              all jobs
  status JOB [--json]               one job, at a glance (--json: all of it)
  watch JOB [--plain]               follow a job until it ends (a live status line on a
                                    terminal; --plain: one line per event)
  plot JOB --out FILE.png           draw its perplexity and learning-rate curves (gnuplot)
  cancel JOB
  delete JOB                        remove a finished job and its checkpoints
  resume JOB [--checkpoint ID] [--epochs N] [--workers N] [--watch]
  checkpoints JOB
  generate JOB [--checkpoint best|latest|ID] [--prompt TEXT] [--words N] [--temperature T]
               [--top_k K] [--top_p P] [--repetition_penalty R] [--stop_at_eos] [--seed S] [--stream]
  score JOB --text TEXT | --file PATH [--top N] [--tokens] [--json]
                                    each token's log-probability and the perplexity
  attention JOB --text TEXT --layer L --head H --out FILE.png [--json]
                                    a Transformer's attention map (gnuplot)
  logprobs JOB --text TEXT --out FILE.png [--top N]
                                    the likeliest next words at each position, as a map
  fetch JOB --out FILE [--checkpoint best|latest|ID]
                                    save a kept checkpoint (for ddlm_generate, ddlm_train)
  workers                           registered workers
  certs --out DIR --hosts H1,H2     a CA and a coordinator certificate, for several machines
  token                             a new random token, for a --tokens_file
security (every command but launch, certs and token):
  --ca_cert F --token_file F        TLS checked against CA F, with the token in F
                                    (defaults: $DDLM_CA_CERT, $DDLM_TOKEN_FILE)
  --tls_cert F --tls_key F          a client certificate, for a coordinator with --tls_client_ca
  --insecure                        plain text (launch: run everything in plain text))";

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

// A status line redrawn in place: on a terminal, unless --plain.
bool LiveProgress() { return !absl::GetFlag(FLAGS_plain) && ddlm::IsTerminal(stdout); }

// Follows the job to its end; exit code 0 only if it SUCCEEDED.
int Watch(ddlm::JobService::Stub& stub, const std::string& job_id, int64_t after = 0) {
  absl::StatusOr<ddlm::JobState> state = ddlm::FollowJob(stub, job_id, after, stdout, LiveProgress());
  if (!state.ok()) return Fail(state.status());
  return *state == ddlm::SUCCEEDED ? 0 : 1;
}

absl::StatusOr<ddlm::JobSpec> ReadSpec() {
  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) return absl::InvalidArgumentError("--config is required");
  return ddlm::LoadJobSpec(path);
}

// ---- launch: a coordinator and N workers on this machine.
int Launch(const std::set<std::string>& given) {
  absl::StatusOr<ddlm::JobSpec> spec = ReadSpec();
  if (!spec.ok()) return Fail(spec.status());
  const std::string self_path = ddlm::SelfExecutable();
  ddlm::LocalLaunchOptions options;
  options.spec = *std::move(spec);
  // As written, before LoadJobSpec's defaults: does the file choose the workers?
  absl::StatusOr<std::string> text = ddlm::ReadFile(absl::GetFlag(FLAGS_config));
  if (!text.ok()) return Fail(text.status());
  absl::StatusOr<ddlm::JobSpec> written = ddlm::ParseJobSpecText(*text, absl::GetFlag(FLAGS_config));
  if (!written.ok()) return Fail(written.status());
  options.spec_names_num_workers = written->has_num_workers();
  if (given.count("workers")) options.workers = absl::GetFlag(FLAGS_workers);
  options.device = absl::GetFlag(FLAGS_device);
  options.collective = absl::GetFlag(FLAGS_collective);
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  options.port = absl::GetFlag(FLAGS_port);
  options.live_progress = LiveProgress();
  options.insecure = ddlm::ClientTransportFromFlags().insecure;
  options.coordinator_binary = ddlm::SiblingBinary(self_path, "coordinator/cli", "coordinator", "ddlm_coordinator");
  options.worker_binary = ddlm::SiblingBinary(self_path, "coordinator/cli", "worker", "ddlm_worker");
  absl::StatusOr<ddlm::JobState> state = ddlm::LaunchLocally(options, stdout);
  if (!state.ok()) return Fail(state.status());
  return *state == ddlm::SUCCEEDED ? 0 : 1;
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
  if (command == "launch") return Launch(given);
  if (command == "certs") {
    // A CA and the coordinator's certificate for several machines (README: Security).
    const std::string out = absl::GetFlag(FLAGS_out);
    if (out.empty()) {
      std::fprintf(stderr, "ddlm certs: give --out DIR (and --hosts H1,H2)\n");
      return 2;
    }
    absl::StatusOr<ddlm::CertificateFiles> files = ddlm::MakeCertificates(out, absl::GetFlag(FLAGS_hosts));
    if (!files.ok()) return Fail(files.status());
    std::printf("made %s (give it to every client), %s and %s (the coordinator's); keep %s private\n",
                files->ca_cert.c_str(), files->server_cert.c_str(), files->server_key.c_str(), files->ca_key.c_str());
    return 0;
  }
  if (command == "token") {
    absl::StatusOr<std::string> token = ddlm::NewToken();
    if (!token.ok()) return Fail(token.status());
    std::printf("%s\n", token->c_str());
    return 0;
  }

  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ddlm::MakeChannelCredentials(ddlm::ClientTransportFromFlags());
  if (!credentials.ok()) return Fail(credentials.status());
  // Replies up to what the coordinator sends in one message (64 MiB: scores and
  // attention maps can pass gRPC's default 4 MiB).
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  auto stub = ddlm::JobService::NewStub(
      grpc::CreateCustomChannel(absl::GetFlag(FLAGS_coordinator), *credentials, channel_args));
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
    if (given.count("workers")) spec->set_num_workers(absl::GetFlag(FLAGS_workers));
    if (absl::GetFlag(FLAGS_threads) < 0) {
      std::fprintf(stderr, "ddlm submit: --threads must be >= 0, got %d\n", absl::GetFlag(FLAGS_threads));
      return 2;
    }
    if (absl::GetFlag(FLAGS_threads) > 0 && spec->schedule().threads() == 0) {
      spec->mutable_schedule()->set_threads(absl::GetFlag(FLAGS_threads));
    }
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
    std::printf("%s", ddlm::JobTable({response.jobs().begin(), response.jobs().end()}).c_str());
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
    if (command == "status" && !absl::GetFlag(FLAGS_json)) {
      std::printf("%s", ddlm::JobSummary(job, absl::Now()).c_str());
    } else {
      Print(job);
    }
    return 0;
  }
  if (command == "plot") {
    if (!need_job()) return 2;
    const std::string out = absl::GetFlag(FLAGS_out);
    if (out.empty()) {
      std::fprintf(stderr, "ddlm plot: give --out FILE.png\n");
      return 2;
    }
    ddlm::Job job;
    std::vector<ddlm::JobEvent> events;
    if (absl::Status s = ddlm::ReadJobEvents(*stub, arg, &job, &events); !s.ok()) return Fail(s);
    if (absl::Status s = ddlm::PlotCurves(ddlm::CurvesFromEvents(job, events), out); !s.ok()) return Fail(s);
    std::printf("%s's curves drawn to %s\n", arg.c_str(), out.c_str());
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
    request.set_prompt(absl::GetFlag(FLAGS_prompt));
    request.set_top_p(absl::GetFlag(FLAGS_top_p));
    request.set_repetition_penalty(absl::GetFlag(FLAGS_repetition_penalty));
    request.set_stop_at_eos(absl::GetFlag(FLAGS_stop_at_eos));
    std::vector<std::string> unknown;
    if (absl::GetFlag(FLAGS_stream)) {
      std::unique_ptr<grpc::ClientReader<ddlm::GenerateResponse>> reader = stub->GenerateStream(&context, request);
      ddlm::GenerateResponse piece;
      while (reader->Read(&piece)) {
        unknown.insert(unknown.end(), piece.unknown_words().begin(), piece.unknown_words().end());
        std::fwrite(piece.text().data(), 1, piece.text().size(), stdout);
        std::fflush(stdout);
      }
      if (status = reader->Finish(); !status.ok()) return Fail(status);
      std::printf("\n");
    } else {
      ddlm::GenerateResponse response;
      if (status = stub->Generate(&context, request, &response); !status.ok()) return Fail(status);
      unknown.assign(response.unknown_words().begin(), response.unknown_words().end());
      std::printf("%s\n", response.text().c_str());
    }
    for (const std::string& word : unknown) {
      std::fprintf(stderr, "ddlm generate: '%s' is not in the vocabulary: read as <unk>\n", word.c_str());
    }
    return 0;
  }
  if (command == "score" || command == "logprobs") {
    if (!need_job()) return 2;
    const bool drawing = command == "logprobs";
    const bool text = !absl::GetFlag(FLAGS_text).empty();
    const bool file = !absl::GetFlag(FLAGS_file).empty();
    if (drawing ? (!text || file) : text == file) {
      std::fprintf(stderr, "ddlm %s: give %s\n", command.c_str(),
                   drawing ? "--text TEXT (a file cannot be drawn)" : "one of --text TEXT or --file PATH");
      return 2;
    }
    ddlm::ScoreTextRequest request;
    request.set_job_id(arg);
    request.set_checkpoint(absl::GetFlag(FLAGS_checkpoint));
    if (!absl::GetFlag(FLAGS_file).empty() && !drawing) {
      request.set_file(absl::GetFlag(FLAGS_file));
      request.set_tokens(absl::GetFlag(FLAGS_tokens));
    } else {
      request.set_text(absl::GetFlag(FLAGS_text));
    }
    request.set_top_n(drawing && absl::GetFlag(FLAGS_top) == 0 ? 8 : absl::GetFlag(FLAGS_top));
    if (drawing && absl::GetFlag(FLAGS_out).empty()) {
      std::fprintf(stderr, "ddlm logprobs: give --text TEXT and --out FILE.png\n");
      return 2;
    }
    ddlm::ScoreTextResponse response;
    if (status = stub->ScoreText(&context, request, &response); !status.ok()) return Fail(status);
    if (drawing) {
      absl::StatusOr<ddlm::Heatmap> heatmap = ddlm::LogProbHeatmap(response);
      if (!heatmap.ok()) return Fail(heatmap.status());
      if (absl::Status s = ddlm::PlotHeatmap(*heatmap, absl::GetFlag(FLAGS_out)); !s.ok()) return Fail(s);
      std::printf("%s's log-probabilities drawn to %s\n", arg.c_str(), absl::GetFlag(FLAGS_out).c_str());
      return 0;
    }
    const std::string out = absl::GetFlag(FLAGS_json) ? ddlm::AsJson(response) + "\n" : ddlm::ScoreTable(response);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }
  if (command == "attention") {
    if (!need_job()) return 2;
    ddlm::AttentionRequest request;
    request.set_job_id(arg);
    request.set_checkpoint(absl::GetFlag(FLAGS_checkpoint));
    request.set_text(absl::GetFlag(FLAGS_text));
    if (!absl::GetFlag(FLAGS_json)) {
      request.add_layers(absl::GetFlag(FLAGS_layer));
      request.add_heads(absl::GetFlag(FLAGS_head));
      if (absl::GetFlag(FLAGS_out).empty()) {
        std::fprintf(stderr, "ddlm attention: give --out FILE.png (or --json)\n");
        return 2;
      }
    }
    ddlm::AttentionResponse response;
    if (status = stub->Attention(&context, request, &response); !status.ok()) return Fail(status);
    if (absl::GetFlag(FLAGS_json)) {
      std::printf("%s\n", ddlm::AsJson(response).c_str());
      return 0;
    }
    absl::StatusOr<ddlm::Heatmap> heatmap =
        ddlm::AttentionHeatmap(response, absl::GetFlag(FLAGS_layer), absl::GetFlag(FLAGS_head));
    if (!heatmap.ok()) return Fail(heatmap.status());
    if (absl::Status s = ddlm::PlotHeatmap(*heatmap, absl::GetFlag(FLAGS_out)); !s.ok()) return Fail(s);
    std::printf("%s's attention (layer %d, head %d) drawn to %s\n", arg.c_str(), absl::GetFlag(FLAGS_layer),
                absl::GetFlag(FLAGS_head), absl::GetFlag(FLAGS_out).c_str());
    return 0;
  }
  if (command == "fetch") {
    if (!need_job()) return 2;
    const std::string out = absl::GetFlag(FLAGS_out);
    if (out.empty()) {
      std::fprintf(stderr, "ddlm fetch: give --out FILE\n");
      return 2;
    }
    absl::Status saved = ddlm::SaveCheckpoint(*stub, arg, absl::GetFlag(FLAGS_checkpoint), out);
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
