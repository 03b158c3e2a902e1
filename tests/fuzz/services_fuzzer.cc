// Fuzz target: every JobService and WorkerService request, in process, against a real
// Coordinator (the logic the gRPC adapters translate to; validation lives there). The
// first byte picks the method, the rest is that method's request message in binary
// protobuf. Two workers and a running job are set up, so requests can reach a live
// attempt; state accumulates across inputs, as on a long-lived server, and is started
// afresh (a new state directory) every kInputsPerCoordinator inputs so that it stays
// bounded. A failure may so depend on earlier inputs: libFuzzer's crash report lists
// the run, and -runs with the inputs before it replays it.

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/base/config.h"
#include "common/base/file_io.h"
#include "coordinator/coordinator.h"
#include "coordinator/stream_sink.h"

namespace {

template <typename T>
class DiscardSink : public ddlm::StreamSink<T> {
 public:
  void Send(const T&) override { ++sent; }
  void Close(const absl::Status&) override { closed = true; }
  int sent = 0;
  bool closed = false;
};

constexpr int kInputsPerCoordinator = 2000;

// The state directory of the current coordinator; removed when it is replaced and at exit.
std::string& StateDir() {
  static std::string dir;
  return dir;
}

void RemoveStateDir() {
  if (!StateDir().empty()) (void)ddlm::RemoveTree(StateDir());
}

ddlm::Coordinator* Setup() {
  static ddlm::RealClock clock;
  ddlm::CoordinatorOptions options;
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/ddlm-services-fuzzer-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror("services_fuzzer: mkdtemp");
    std::abort();
  }
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
  auto created = ddlm::Coordinator::Create(options, &clock);
  if (!created.ok()) return nullptr;
  ddlm::Coordinator* c = created->release();
  for (const char* id : {"w0", "w1"}) {
    ddlm::RegisterRequest r;
    r.mutable_worker()->set_worker_id(id);
    r.mutable_worker()->set_incarnation(1);
    r.set_host("127.0.0.1");
    r.set_device("cpu");
    (void)c->Register(r);
  }
  ddlm::JobSpec spec;
  spec.mutable_data()->set_path("configs/quickstart_data");
  spec.mutable_data()->set_batch_size(4);
  spec.mutable_model()->set_emsize(8);
  spec.mutable_model()->set_nhid(8);
  spec.set_num_workers(2);
  ddlm::ApplyDefaults(&spec);
  absl::StatusOr<ddlm::Job> job = c->SubmitJob(spec, "fuzz");  // job-1, running on w0 and w1.
  if (!job.ok() || job->state() != ddlm::RUNNING) {
    std::fprintf(stderr, "services_fuzzer: the running job was not set up: %s\n",
                 job.ok() ? (ddlm::JobState_Name(job->state()) + ": " + job->message()).c_str()
                          : job.status().ToString().c_str());
    std::abort();
  }
  return c;
}

template <typename M>
bool Parse(const uint8_t* data, size_t size, M* message) {
  return message->ParseFromArray(data, static_cast<int>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<ddlm::Coordinator> c;
  static int inputs = 0;
  if (c == nullptr || ++inputs % kInputsPerCoordinator == 0) {
    if (c == nullptr) std::atexit(RemoveStateDir);
    c.reset();
    c.reset(Setup());
  }
  if (c == nullptr || size < 1) return 0;
  const uint8_t method = data[0];
  ++data;
  --size;
  switch (method % 26) {
    case 0: {
      ddlm::SubmitJobRequest r;
      if (Parse(data, size, &r)) (void)c->SubmitJob(r.spec(), "fuzz");
      break;
    }
    case 1: {
      ddlm::GetJobRequest r;
      if (Parse(data, size, &r)) (void)c->GetJob(r.job_id());
      break;
    }
    case 2: (void)c->ListJobs(); break;
    case 3: {
      ddlm::WatchJobRequest r;
      if (!Parse(data, size, &r)) break;
      DiscardSink<ddlm::JobEvent> sink;
      if (c->AttachEventStream(r.job_id(), r.after_sequence(), &sink).ok() && !sink.closed) {
        c->DetachEventStream(&sink);
      }
      break;
    }
    case 4: {
      ddlm::CancelJobRequest r;
      if (Parse(data, size, &r)) (void)c->CancelJob(r.job_id());
      break;
    }
    case 5: {
      ddlm::ResumeJobRequest r;
      if (Parse(data, size, &r)) (void)c->ResumeJob(r);
      break;
    }
    case 6: {
      ddlm::DeleteJobRequest r;
      if (Parse(data, size, &r)) (void)c->DeleteJob(r.job_id());
      break;
    }
    case 7: {
      ddlm::ListCheckpointsRequest r;
      if (Parse(data, size, &r)) (void)c->ListCheckpoints(r.job_id());
      break;
    }
    case 8: {
      ddlm::FetchCheckpointRequest r;
      if (Parse(data, size, &r)) (void)c->KeptCheckpointPath(r.job_id(), r.checkpoint());
      break;
    }
    case 9: {
      ddlm::GenerateRequest r;
      if (Parse(data, size, &r) && r.words() <= 200) (void)c->Generate(r);  // Bounded per input.
      break;
    }
    case 10: (void)c->ListWorkers(); break;
    case 11: {
      ddlm::RegisterRequest r;
      if (Parse(data, size, &r)) (void)c->Register(r, r.worker().worker_id().size() % 2 ? "a" : "b");
      break;
    }
    case 12: {
      ddlm::HeartbeatRequest r;
      if (Parse(data, size, &r)) (void)c->Heartbeat(r.worker());
      break;
    }
    case 13: {
      ddlm::DeregisterRequest r;
      if (Parse(data, size, &r)) (void)c->Deregister(r.worker());
      break;
    }
    case 14: {
      ddlm::StreamCommandsRequest r;
      if (!Parse(data, size, &r)) break;
      DiscardSink<ddlm::WorkerCommand> sink;
      if (c->AttachCommandStream(r.worker(), &sink).ok() && !sink.closed) c->DetachCommandStream(&sink);
      break;
    }
    case 15: {
      ddlm::KeySetRequest r;
      if (Parse(data, size, &r)) (void)c->KeySet(r.worker(), r.key(), r.value());
      break;
    }
    case 16: {
      ddlm::KeyGetRequest r;
      if (Parse(data, size, &r)) (void)c->KeyGet(r.worker(), r.key());
      break;
    }
    case 17: {
      ddlm::KeyWaitRequest r;
      if (!Parse(data, size, &r)) break;
      (void)c->KeyWait(r.worker(), {r.keys().begin(), r.keys().end()}, absl::ZeroDuration());
      break;
    }
    case 18: {
      ddlm::DownloadShardRequest r;
      if (Parse(data, size, &r)) (void)c->Shard(r);
      break;
    }
    case 19: {
      ddlm::DownloadCheckpointRequest r;
      if (Parse(data, size, &r)) (void)c->CheckpointFile(r.worker(), r.job_id(), r.checkpoint_id());
      break;
    }
    case 20: {
      ddlm::ReportMetricsRequest r;
      if (Parse(data, size, &r)) (void)c->ReportMetrics(r);
      break;
    }
    case 21: {
      ddlm::ReportEvaluationRequest r;
      if (Parse(data, size, &r)) (void)c->ReportEvaluation(r, absl::ZeroDuration());
      break;
    }
    case 22: {
      ddlm::CheckpointChunk r;
      if (!Parse(data, size, &r)) break;
      auto upload = c->BeginUpload(r.worker(), r.attempt());
      if (upload.ok() && (*upload)->Append(r.data()).ok()) (void)(*upload)->Finish();
      break;
    }
    case 23: {
      ddlm::FinishAssignmentRequest r;
      if (Parse(data, size, &r)) (void)c->FinishAssignment(r);
      break;
    }
    case 24: {
      ddlm::ScoreTextRequest r;
      if (Parse(data, size, &r)) (void)c->ScoreText(r);
      break;
    }
    case 25: {
      ddlm::AttentionRequest r;
      if (Parse(data, size, &r)) (void)c->Attention(r);
      break;
    }
  }
  return 0;
}
