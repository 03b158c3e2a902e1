// Fuzz target: every JobService and WorkerService request, through the real gRPC
// handlers (coordinator/rpc/services.h) on an in-process channel, with the access
// control a coordinator run with --tokens_file applies, as one of nine callers: none,
// an unknown token, an admin's token sent without "Bearer ", an admin, the running
// job's owner, another user, each worker's own token and a third worker token.
//
// Input: byte 0 picks the method, byte 1 the caller, the rest is the request in binary
// protobuf. Two workers (w0, w1) and a running job (job-1, a small Transformer owned by
// user bob, with one checkpoint uploaded by its rank 0) are set up, so requests can
// reach a live attempt and Generate, ScoreText and Attention a real model. State
// accumulates across inputs, as on a long-lived server, but is set up afresh whenever
// an input ended job-1's attempt (a cancel, a worker leaving...), so that every input
// meets the live attempt whatever order inputs come in, and every kInputsPerCoordinator
// inputs, so that it stays bounded. Time stands still (a FakeClock), so nothing changes
// between calls.
//
// Properties, checked on every input (a violation aborts, with the method, caller and
// what differs):
//   * the harness's own table of the rules (access_control.h) says which calls must be
//     refused: no token or an unknown one: UNAUTHENTICATED; a worker token on
//     JobService, a user or admin token on WorkerService, a user on another user's job,
//     a worker token naming a worker id bound to another worker token:
//     PERMISSION_DENIED. The reply must be exactly that;
//   * a call answered UNAUTHENTICATED or PERMISSION_DENIED (predicted or not) changed
//     nothing: the coordinator's jobs and workers are the same before and after;
//   * a user's ListJobs holds only their own jobs, and their ListWorkers names no job
//     of another user's.

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/base/file_io.h"
#include "common/training/checkpoint.h"
#include "common/training/model.h"
#include "coordinator/access_control.h"
#include "coordinator/coordinator.h"
#include "coordinator/rpc/services.h"
#include "coordinator/stream_sink.h"
#include "coordinator/worker_registry.h"
#include "proto/job_service.grpc.pb.h"
#include "proto/worker_service.grpc.pb.h"

namespace {

constexpr int kInputsPerCoordinator = 2000;
constexpr int kMethods = 27;

// ---------------------------------------------------------------- callers

struct FuzzCaller {
  const char* what;
  std::optional<std::string> authorization;  // nullopt: no metadata.
  bool authenticated;
  ddlm::Role role;
  std::string name;
};

const char kAliceToken[] = "admin-token-alice-0001";
const char kTokensFile[] =
    "admin-token-alice-0001  admin   alice\n"
    "user-token-bob-000002   user    bob\n"
    "user-token-carol-00003  user    carol\n"
    "worker-token-w0-00004   worker  rack-w0\n"
    "worker-token-w1-00005   worker  rack-w1\n"
    "worker-token-new-0006   worker  rack-new\n";

const std::vector<FuzzCaller>& Callers() {
  static const auto* callers = new std::vector<FuzzCaller>{
      {"no token", std::nullopt, false, ddlm::Role::kOpen, ""},
      {"an unknown token", "Bearer not-a-token-of-the-file", false, ddlm::Role::kOpen, ""},
      {"alice's token without Bearer", absl::StrCat("Token ", kAliceToken), false, ddlm::Role::kOpen, ""},
      {"admin alice", absl::StrCat("Bearer ", kAliceToken), true, ddlm::Role::kAdmin, "alice"},
      {"user bob", "Bearer user-token-bob-000002", true, ddlm::Role::kUser, "bob"},
      {"user carol", "Bearer user-token-carol-00003", true, ddlm::Role::kUser, "carol"},
      {"worker rack-w0", "Bearer worker-token-w0-00004", true, ddlm::Role::kWorker, "rack-w0"},
      {"worker rack-w1", "Bearer worker-token-w1-00005", true, ddlm::Role::kWorker, "rack-w1"},
      {"worker rack-new", "Bearer worker-token-new-0006", true, ddlm::Role::kWorker, "rack-new"},
  };
  return *callers;
}

// ---------------------------------------------------------------- the server

// The state directory of the current server; removed when it is replaced and at exit.
std::string& StateDir() {
  static std::string dir;
  return dir;
}

void RemoveStateDir() {
  if (!StateDir().empty()) (void)ddlm::RemoveTree(StateDir());
}

void Die(const std::string& why) {
  std::fprintf(stderr, "services_fuzzer: %s\n", why.c_str());
  std::abort();
}

// Keeps the first assignment sent to a worker.
class AssignmentSink : public ddlm::StreamSink<ddlm::WorkerCommand> {
 public:
  void Send(const ddlm::WorkerCommand& command) override {
    if (command.has_assign() && !assignment) assignment = command.assign();
  }
  void Close(const absl::Status&) override {}
  std::optional<ddlm::Assignment> assignment;
};

// A checkpoint of job `spec`'s model (fresh weights) for `assignment`'s vocabulary, at
// step 5 of epoch 1, as rank 0 would upload it.
std::string ModelCheckpoint(const ddlm::JobSpec& spec, const ddlm::Assignment& assignment) {
  std::vector<std::string> words(assignment.vocabulary().begin(), assignment.vocabulary().end());
  torch::manual_seed(1);
  auto model = ddlm::BuildModel(spec.model(), static_cast<int64_t>(words.size()));
  if (!model.ok()) Die(model.status().ToString());
  ddlm::Checkpoint c;
  *c.header.mutable_spec() = spec;
  c.header.mutable_position()->set_epoch(1);
  c.header.mutable_position()->set_batch(5);
  c.header.mutable_position()->set_global_step(5);
  c.header.set_lr(spec.optimizer().lr());
  for (const std::string& w : words) c.header.add_vocabulary(w);
  c.header.set_vocabulary_fingerprint(ddlm::Dictionary::FromWords(words).Fingerprint());
  ddlm::CaptureModel(**model, nullptr, &c);
  absl::StatusOr<std::string> bytes = ddlm::SerializeCheckpoint(c);
  if (!bytes.ok()) Die(bytes.status().ToString());
  return *std::move(bytes);
}

struct Server {
  ddlm::FakeClock clock;
  ddlm::AccessControl access;
  std::unique_ptr<ddlm::Coordinator> coordinator;
  std::unique_ptr<ddlm::JobServiceImpl> job_service;
  std::unique_ptr<ddlm::WorkerServiceImpl> worker_service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<ddlm::JobService::Stub> jobs;
  std::unique_ptr<ddlm::WorkerService::Stub> workers;
  // The harness's model of the worker bindings (worker_credentials.h): an id is bound
  // to the worker token that first registered it, and (time standing still) stays so.
  std::map<std::string, std::string> bound;

  ~Server() {
    if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
  }
};

std::unique_ptr<Server> Setup() {
  auto s = std::make_unique<Server>();
  absl::StatusOr<ddlm::AccessControl> access = ddlm::AccessControl::Parse(kTokensFile, "the fuzzer's tokens");
  if (!access.ok()) Die(access.status().ToString());
  s->access = *std::move(access);

  ddlm::CoordinatorOptions options;
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/ddlm-services-fuzzer-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) Die("mkdtemp failed");
  RemoveStateDir();
  StateDir() = pattern;
  options.state_dir = pattern;
  options.data_roots = {"."};
  // Under Bazel the corpus files are symlinks out of the runfiles: serve where they lead.
  if (char real[PATH_MAX]; ::realpath("configs/quickstart_data/train.txt", real) != nullptr) {
    options.data_roots.push_back(std::string(real).substr(0, std::string(real).rfind('/')));
  }
  options.max_evaluation_wait = absl::ZeroDuration();
  options.prepare_on_own_thread = false;  // Each input's effects are over when its calls return.
  auto created = ddlm::Coordinator::Create(options, &s->clock);
  if (!created.ok()) Die(created.status().ToString());
  s->coordinator = *std::move(created);
  ddlm::Coordinator* c = s->coordinator.get();
  for (const char* id : {"w0", "w1"}) {
    ddlm::RegisterRequest r;
    r.mutable_worker()->set_worker_id(id);
    r.mutable_worker()->set_incarnation(1);
    r.set_host("127.0.0.1");
    r.set_device("cpu");
    const std::string credential = absl::StrCat("rack-", id);
    if (!c->Register(r, credential).ok()) Die(absl::StrCat("could not register ", id));
    s->bound[id] = credential;
  }
  ddlm::JobSpec spec;
  spec.mutable_data()->set_path("configs/quickstart_data");
  spec.mutable_data()->set_batch_size(4);
  spec.mutable_data()->set_bptt(8);
  spec.mutable_model()->set_type(ddlm::TRANSFORMER);
  spec.mutable_model()->set_emsize(8);
  spec.mutable_model()->set_nhid(8);
  spec.mutable_model()->set_nlayers(1);
  spec.mutable_model()->set_nhead(2);
  spec.set_num_workers(2);
  ddlm::ApplyDefaults(&spec);
  AssignmentSink w0_commands;
  ddlm::WorkerRef w0;
  w0.set_worker_id("w0");
  w0.set_incarnation(1);
  if (!c->AttachCommandStream(w0, &w0_commands).ok()) Die("no command stream for w0");
  absl::StatusOr<ddlm::Job> job = c->SubmitJob(spec, "bob");  // job-1, running on w0 and w1.
  c->DetachCommandStream(&w0_commands);
  if (!job.ok() || job->state() != ddlm::RUNNING) {
    Die(absl::StrCat("the running job was not set up: ",
                     job.ok() ? ddlm::JobState_Name(job->state()) + ": " + job->message() : job.status().ToString()));
  }
  if (!w0_commands.assignment || w0_commands.assignment->attempt().rank() != 0) Die("w0 got no rank-0 assignment");
  auto upload = c->BeginUpload(w0, w0_commands.assignment->attempt());
  if (!upload.ok()) Die(upload.status().ToString());
  if (absl::Status a = (*upload)->Append(ModelCheckpoint(job->spec(), *w0_commands.assignment)); !a.ok()) {
    Die(a.ToString());
  }
  if (auto kept = (*upload)->Finish(); !kept.ok()) Die("the checkpoint was not kept: " + kept.status().ToString());

  s->job_service = std::make_unique<ddlm::JobServiceImpl>(c, &s->access);
  s->worker_service = std::make_unique<ddlm::WorkerServiceImpl>(c, &s->access);
  grpc::ServerBuilder builder;  // No port: reached only through its in-process channel.
  builder.RegisterService(s->job_service.get());
  builder.RegisterService(s->worker_service.get());
  builder.SetMaxReceiveMessageSize(64 << 20);
  s->server = builder.BuildAndStart();
  if (s->server == nullptr) Die("the in-process server did not start");
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::Channel> channel = s->server->InProcessChannel(arguments);
  s->jobs = ddlm::JobService::NewStub(channel);
  s->workers = ddlm::WorkerService::NewStub(channel);
  return s;
}

// Whether job-1's first attempt still runs on w0 and w1, as Setup left it.
bool AttemptLive(ddlm::Coordinator& c) {
  absl::StatusOr<ddlm::Job> job = c.GetJob("job-1");
  if (!job.ok() || job->state() != ddlm::RUNNING || job->restarts() != 0) return false;
  int holding = 0;
  for (const ddlm::WorkerInfo& w : c.ListWorkers()) {
    holding += (w.worker_id() == "w0" || w.worker_id() == "w1") && w.job_id() == "job-1";
  }
  return holding == 2;
}

// What a refused call must not change: every job and every worker, as the coordinator
// lists them.
std::string Snapshot(ddlm::Coordinator& c) {
  std::string s;
  for (const ddlm::Job& job : c.ListJobs()) absl::StrAppend(&s, "job ", job.ShortDebugString(), "\n");
  for (const ddlm::WorkerInfo& w : c.ListWorkers()) absl::StrAppend(&s, "worker ", w.ShortDebugString(), "\n");
  return s;
}

std::map<std::string, std::string> Owners(ddlm::Coordinator& c) {
  std::map<std::string, std::string> owners;
  for (const ddlm::Job& job : c.ListJobs()) owners[job.id()] = job.owner();
  return owners;
}

// ---------------------------------------------------------------- the rules

enum class Service { kJob, kWorker };

// What the rules say of a call: nullopt if it may pass the access checks (the
// coordinator may still refuse it for what it asks), else the code it must get.
std::optional<grpc::StatusCode> Refusal(Service service, const FuzzCaller& caller, const std::string* job_id,
                                        const std::string* worker_id, const std::map<std::string, std::string>& owners,
                                        const std::map<std::string, std::string>& bound) {
  if (!caller.authenticated) return grpc::StatusCode::UNAUTHENTICATED;
  if (service == Service::kJob && caller.role == ddlm::Role::kWorker) return grpc::StatusCode::PERMISSION_DENIED;
  if (service == Service::kWorker && caller.role != ddlm::Role::kWorker) return grpc::StatusCode::PERMISSION_DENIED;
  if (job_id != nullptr && caller.role == ddlm::Role::kUser) {
    auto it = owners.find(*job_id);
    if (it != owners.end() && it->second != caller.name) return grpc::StatusCode::PERMISSION_DENIED;
  }
  if (worker_id != nullptr) {
    auto it = bound.find(*worker_id);
    if (it != bound.end() && it->second != caller.name) return grpc::StatusCode::PERMISSION_DENIED;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- calls

// A call's context: the caller's metadata and a deadline. A call the rules refuse is
// answered at once; the deadline only ends a wrongly admitted one that would wait.
void Prepare(grpc::ClientContext* context, const FuzzCaller& caller, absl::Duration deadline) {
  if (caller.authorization) context->AddMetadata("authorization", *caller.authorization);
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
}

// Reads a server stream to its end, or cancels it after `max` messages.
template <typename Response>
grpc::Status Drain(grpc::ClientContext* context, std::unique_ptr<grpc::ClientReader<Response>> reader, int max) {
  Response response;
  for (int n = 0; reader->Read(&response);) {
    if (++n >= max) {
      context->TryCancel();
      break;
    }
  }
  return reader->Finish();
}

template <typename M>
bool Parse(const uint8_t* data, size_t size, M* message) {
  return message->ParseFromArray(data, static_cast<int>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<Server> s;
  static int inputs = 0;
  if (s == nullptr || ++inputs % kInputsPerCoordinator == 0 || !AttemptLive(*s->coordinator)) {
    if (s == nullptr) std::atexit(RemoveStateDir);
    s.reset();
    s = Setup();
  }
  if (size < 2) return 0;
  const int method = data[0] % kMethods;
  const FuzzCaller& caller = Callers()[data[1] % Callers().size()];
  data += 2;
  size -= 2;

  ddlm::Coordinator& c = *s->coordinator;
  const std::string before = Snapshot(c);
  const std::map<std::string, std::string> owners = Owners(c);
  // What the call is about, for the rules; set by each case.
  Service service = Service::kJob;
  const std::string* job_id = nullptr;
  const std::string* worker_id = nullptr;
  std::optional<grpc::StatusCode> refusal;
  auto decide = [&](Service kind, const std::string* job, const std::string* worker) {
    service = kind;
    job_id = job;
    worker_id = worker;
    refusal = Refusal(service, caller, job_id, worker_id, owners, s->bound);
  };
  // Streams that would stay open are ended quickly when admitted (attaching and
  // detaching them changes nothing the snapshot holds).
  auto wait = [&] { return refusal ? absl::Seconds(10) : absl::Milliseconds(20); };
  grpc::ClientContext context;
  grpc::Status status;

  switch (method) {
    case 0: {
      ddlm::SubmitJobRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kJob, nullptr, nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::Job reply;
      status = s->jobs->SubmitJob(&context, r, &reply);
      break;
    }
    case 1: {
      ddlm::GetJobRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kJob, &r.job_id(), nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::Job reply;
      status = s->jobs->GetJob(&context, r, &reply);
      break;
    }
    case 2: {
      decide(Service::kJob, nullptr, nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::ListJobsResponse reply;
      status = s->jobs->ListJobs(&context, ddlm::ListJobsRequest(), &reply);
      if (status.ok() && caller.role == ddlm::Role::kUser) {
        for (const ddlm::Job& job : reply.jobs()) {
          if (job.owner() != caller.name) {
            Die(absl::StrCat("ListJobs showed ", caller.what, " ", job.id(), " of '", job.owner(), "'"));
          }
        }
      }
      break;
    }
    case 3: {
      ddlm::WatchJobRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kJob, &r.job_id(), nullptr);
      Prepare(&context, caller, wait());
      status = Drain(&context, s->jobs->WatchJob(&context, r), 1);
      break;
    }
    case 4: {
      ddlm::CancelJobRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kJob, &r.job_id(), nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::Job reply;
      status = s->jobs->CancelJob(&context, r, &reply);
      break;
    }
    case 5: {
      ddlm::ResumeJobRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kJob, &r.job_id(), nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::Job reply;
      status = s->jobs->ResumeJob(&context, r, &reply);
      break;
    }
    case 6: {
      ddlm::DeleteJobRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kJob, &r.job_id(), nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::DeleteJobResponse reply;
      status = s->jobs->DeleteJob(&context, r, &reply);
      break;
    }
    case 7: {
      ddlm::ListCheckpointsRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kJob, &r.job_id(), nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::ListCheckpointsResponse reply;
      status = s->jobs->ListCheckpoints(&context, r, &reply);
      break;
    }
    case 8: {
      ddlm::FetchCheckpointRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kJob, &r.job_id(), nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      status = Drain(&context, s->jobs->FetchCheckpoint(&context, r), 1 << 20);
      break;
    }
    case 9:
    case 26: {
      ddlm::GenerateRequest r;
      if (!Parse(data, size, &r) || r.words() > 200) return 0;  // Bounded per input.
      decide(Service::kJob, &r.job_id(), nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      if (method == 9) {
        ddlm::GenerateResponse reply;
        status = s->jobs->Generate(&context, r, &reply);
      } else {
        status = Drain(&context, s->jobs->GenerateStream(&context, r), 1 << 20);
      }
      break;
    }
    case 10: {
      decide(Service::kJob, nullptr, nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::ListWorkersResponse reply;
      status = s->jobs->ListWorkers(&context, ddlm::ListWorkersRequest(), &reply);
      if (status.ok() && caller.role == ddlm::Role::kUser) {
        for (const ddlm::WorkerInfo& w : reply.workers()) {
          auto it = owners.find(w.job_id());
          if (!w.job_id().empty() && (it == owners.end() || it->second != caller.name)) {
            Die(absl::StrCat("ListWorkers showed ", caller.what, " that ", w.worker_id(), " runs ", w.job_id()));
          }
        }
      }
      break;
    }
    case 11: {
      ddlm::RegisterRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      // A registration checks the request (the registry's static rule) before the
      // binding: a malformed one from an impostor is INVALID_ARGUMENT, and changes
      // nothing either.
      if (refusal == grpc::StatusCode::PERMISSION_DENIED && caller.role == ddlm::Role::kWorker &&
          !ddlm::WorkerRegistry::Validate(r.worker(), r.host(), r.device()).ok()) {
        refusal = grpc::StatusCode::INVALID_ARGUMENT;
      }
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::RegisterResponse reply;
      status = s->workers->Register(&context, r, &reply);
      if (status.ok()) s->bound.emplace(r.worker().worker_id(), caller.name);  // The first binds.
      break;
    }
    case 12: {
      ddlm::HeartbeatRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::HeartbeatResponse reply;
      status = s->workers->Heartbeat(&context, r, &reply);
      break;
    }
    case 13: {
      ddlm::DeregisterRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::DeregisterResponse reply;
      status = s->workers->Deregister(&context, r, &reply);
      break;
    }
    case 14: {
      ddlm::StreamCommandsRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      Prepare(&context, caller, wait());
      status = Drain(&context, s->workers->StreamCommands(&context, r), 1);
      break;
    }
    case 15: {
      ddlm::KeySetRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::KeySetResponse reply;
      status = s->workers->KeySet(&context, r, &reply);
      break;
    }
    case 16: {
      ddlm::KeyGetRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::KeyGetResponse reply;
      status = s->workers->KeyGet(&context, r, &reply);
      break;
    }
    case 17: {
      ddlm::KeyWaitRequest r;
      if (!Parse(data, size, &r)) return 0;
      r.set_timeout_ms(0);  // Bounded per input: a key not there is DEADLINE_EXCEEDED at once.
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::KeyWaitResponse reply;
      status = s->workers->KeyWait(&context, r, &reply);
      break;
    }
    case 18: {
      ddlm::DownloadShardRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      Prepare(&context, caller, absl::Seconds(10));
      status = Drain(&context, s->workers->DownloadShard(&context, r), 1 << 20);
      break;
    }
    case 19: {
      ddlm::DownloadCheckpointRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      Prepare(&context, caller, absl::Seconds(10));
      status = Drain(&context, s->workers->DownloadCheckpoint(&context, r), 1 << 20);
      break;
    }
    case 20: {
      ddlm::ReportMetricsRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::ReportMetricsResponse reply;
      status = s->workers->ReportMetrics(&context, r, &reply);
      break;
    }
    case 21: {
      ddlm::ReportEvaluationRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      // The coordinator answers at once (max_evaluation_wait is zero): no short deadline,
      // so that an admitted report is over, its round decided, before the next input.
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::EvaluationDecision reply;
      status = s->workers->ReportEvaluation(&context, r, &reply);
      break;
    }
    case 22: {
      ddlm::CheckpointChunk r;
      if (!Parse(data, size, &r)) return 0;
      // The handler checks the first chunk's shape before whose it is.
      const bool shaped = r.has_attempt() && !r.attempt().job_id().empty();
      decide(Service::kWorker, nullptr, shaped ? &r.worker().worker_id() : nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::CheckpointInfo reply;
      std::unique_ptr<grpc::ClientWriter<ddlm::CheckpointChunk>> writer =
          s->workers->UploadCheckpoint(&context, &reply);
      if (writer->Write(r)) writer->WritesDone();
      status = writer->Finish();
      break;
    }
    case 23: {
      ddlm::FinishAssignmentRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kWorker, nullptr, &r.worker().worker_id());
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::FinishAssignmentResponse reply;
      status = s->workers->FinishAssignment(&context, r, &reply);
      break;
    }
    case 24: {
      ddlm::ScoreTextRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kJob, &r.job_id(), nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::ScoreTextResponse reply;
      status = s->jobs->ScoreText(&context, r, &reply);
      break;
    }
    case 25: {
      ddlm::AttentionRequest r;
      if (!Parse(data, size, &r)) return 0;
      decide(Service::kJob, &r.job_id(), nullptr);
      Prepare(&context, caller, absl::Seconds(10));
      ddlm::AttentionResponse reply;
      status = s->jobs->Attention(&context, r, &reply);
      break;
    }
  }

  const std::string where = absl::StrCat("method ", method, " as ", caller.what);
  if (refusal && status.error_code() != *refusal) {
    Die(absl::StrCat(where, ": the rules refuse it with code ", *refusal, ", it got ", status.error_code(), " (",
                     status.error_message(), ")"));
  }
  const bool refused = status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                       status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
  if (refused || refusal) {
    if (const std::string after = Snapshot(c); after != before) {
      Die(absl::StrCat(where, " was refused (", status.error_message(),
                       ") but changed the coordinator's state:\nbefore\n", before, "after\n", after));
    }
  }
  return 0;
}
