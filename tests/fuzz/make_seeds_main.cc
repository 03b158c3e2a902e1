// Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/), committed to
// the repository:  bazel run //tests/fuzz:make_seeds -- $PWD/tests/fuzz/corpus
// Each seed is a small valid input, so that mutations start from inputs that reach deep.

#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "common/base/config.h"
#include "common/base/file_io.h"
#include "common/base/sharding.h"
#include "common/training/checkpoint.h"
#include "proto/job_service.pb.h"
#include "proto/worker_service.pb.h"

namespace {

std::string g_root;

void Seed(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string dir = g_root + "/" + target;
  ::mkdir(dir.c_str(), 0755);
  const absl::Status s = ddlm::WriteFileAtomically(dir + "/" + name, bytes);
  if (!s.ok()) std::fprintf(stderr, "%s\n", s.ToString().c_str());
}

ddlm::JobSpec Spec() {
  ddlm::JobSpec spec;
  spec.set_name("seed");
  spec.mutable_data()->set_path("configs/quickstart_data");
  spec.mutable_data()->set_batch_size(4);
  spec.mutable_model()->set_type(ddlm::LSTM);
  spec.mutable_model()->set_emsize(8);
  spec.mutable_model()->set_nhid(8);
  spec.mutable_schedule()->set_epochs(2);
  spec.set_num_workers(2);
  return spec;
}

ddlm::WorkerRef Worker(const char* id) {
  ddlm::WorkerRef w;
  w.set_worker_id(id);
  w.set_incarnation(1);
  return w;
}

ddlm::AttemptRef Attempt(int rank) {
  ddlm::AttemptRef a;
  a.set_job_id("job-1");
  a.set_attempt(1);
  a.set_rank(rank);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_ROOT\n");
    return 2;
  }
  g_root = argv[1];
  ::mkdir(g_root.c_str(), 0755);

  // Job specs: text format (first byte even) and JSON (odd).
  std::string text;
  google::protobuf::TextFormat::PrintToString(Spec(), &text);
  Seed("job_spec", "lstm.txt", std::string(1, '\0') + text);
  ddlm::JobSpec transformer = Spec();
  transformer.mutable_model()->set_type(ddlm::TRANSFORMER);
  transformer.mutable_model()->set_nhead(2);
  google::protobuf::TextFormat::PrintToString(transformer, &text);
  Seed("job_spec", "transformer.txt", std::string(1, '\0') + text);
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(Spec(), &json);
  Seed("job_spec", "lstm.json", std::string(1, '\1') + json);

  // A small checkpoint, as rank 0 uploads one.
  ddlm::Checkpoint c;
  *c.header.mutable_spec() = Spec();
  for (const char* w : {"<eos>", "the", "cat"}) c.header.add_vocabulary(w);
  c.header.mutable_position()->set_epoch(1);
  c.header.mutable_position()->set_global_step(10);
  c.header.set_lr(20);
  c.header.set_val_loss(5.5);
  c.header.set_best_val_loss(5.5);
  c.tensors["param/w"] = torch::arange(6, torch::kFloat32).reshape({2, 3});
  c.tensors["rank/1/rng/cpu"] = torch::zeros({8}, torch::kUInt8);
  Seed("checkpoint", "small.ckpt", *ddlm::SerializeCheckpoint(c));

  Seed("token_codec", "ids", ddlm::EncodeTokenIds({0, 1, 2, 3, 33277, 7}, 0, 6));
  Seed("token_codec", "empty", "");
  Seed("corpus", "lines.txt", " = Valkyria Chronicles = \n\n Senjō no Valkyria 3 : <unk> Chronicles\n the cat sat\n");
  Seed("corpus", "unicode.txt", "naïve café — 日本語 tokens\nline two\n");
  Seed("tokens_file", "tokens",
       "# token role name\n0123456789abcdef0123 admin alice\nfedcba9876543210fedc user bob\n"
       "00112233445566778899 worker rack1\n");

  // Every service request, each behind the bytes that pick its method and caller
  // (services_fuzzer.cc), about the job and workers the fuzzer sets up: once as a
  // caller the rules let through, once as one they refuse ("-denied", which sorts
  // first, so that the regression run tries the refused call before the allowed one
  // has changed what it is about).
  enum Caller { kAdmin = 3, kOwner = 4, kOtherUser = 5, kWorker0 = 6, kWorker1 = 7, kNewWorker = 8 };
  auto request = [](int method, const google::protobuf::Message& m) {
    const bool worker_service = method >= 11 && method <= 23;
    const std::string text = m.ShortDebugString();
    const bool names_w1 = text.find("\"w1\"") != std::string::npos;
    const bool names_w2 = text.find("\"w2\"") != std::string::npos;
    const int allowed = worker_service ? (names_w2   ? kNewWorker
                                          : names_w1 ? kWorker1
                                                     : kWorker0)
                                       : (method % 2 == 0 ? kAdmin : kOwner);
    const int refused = worker_service ? (names_w1   ? kWorker0
                                          : names_w2 ? kOwner
                                                     : kWorker1)
                                       : (text.find("job-1") != std::string::npos ? kOtherUser : kWorker0);
    for (const auto& [name, caller] : {std::pair<const char*, int>{"-ok", allowed}, {"-denied", refused}}) {
      Seed("services", absl::StrCat("method-", method, name),
           std::string(1, static_cast<char>(method)) + std::string(1, static_cast<char>(caller)) +
               m.SerializeAsString());
    }
  };
  ddlm::SubmitJobRequest submit;
  *submit.mutable_spec() = Spec();
  request(0, submit);
  ddlm::GetJobRequest get;
  get.set_job_id("job-1");
  request(1, get);
  request(2, ddlm::ListJobsRequest());
  ddlm::WatchJobRequest watch;
  watch.set_job_id("job-1");
  watch.set_after_sequence(1);
  request(3, watch);
  ddlm::CancelJobRequest cancel;
  cancel.set_job_id("job-1");
  request(4, cancel);
  ddlm::ResumeJobRequest resume;
  resume.set_job_id("job-1");
  resume.set_epochs(3);
  resume.set_num_workers(1);
  request(5, resume);
  ddlm::DeleteJobRequest remove;
  remove.set_job_id("job-1");
  request(6, remove);
  ddlm::ListCheckpointsRequest checkpoints;
  checkpoints.set_job_id("job-1");
  request(7, checkpoints);
  ddlm::FetchCheckpointRequest fetch;
  fetch.set_job_id("job-1");
  fetch.set_checkpoint("latest");
  request(8, fetch);
  ddlm::GenerateRequest generate;
  generate.set_job_id("job-1");
  generate.set_words(5);
  generate.set_temperature(0.5);
  generate.set_prompt("the storm");  // Words of the quickstart corpus.
  generate.set_top_p(0.9);
  generate.set_stop_at_eos(true);
  request(9, generate);
  request(26, generate);  // GenerateStream.
  ddlm::ScoreTextRequest score;
  score.set_job_id("job-1");
  score.set_text("the wind caused the rainfall");
  score.set_top_n(3);
  request(24, score);
  ddlm::AttentionRequest attention;
  attention.set_job_id("job-1");
  attention.set_text("the wind caused the rainfall");
  attention.add_layers(0);
  attention.add_heads(1);
  request(25, attention);
  request(10, ddlm::ListWorkersRequest());
  ddlm::RegisterRequest registration;
  *registration.mutable_worker() = Worker("w2");
  registration.set_host("127.0.0.1");
  registration.set_device("cpu");
  request(11, registration);
  ddlm::HeartbeatRequest heartbeat;
  *heartbeat.mutable_worker() = Worker("w0");
  request(12, heartbeat);
  ddlm::DeregisterRequest leave;
  *leave.mutable_worker() = Worker("w2");  // The one registered above: job-1's ranks stay.
  request(13, leave);
  ddlm::StreamCommandsRequest stream;
  *stream.mutable_worker() = Worker("w0");
  request(14, stream);
  ddlm::KeySetRequest set;
  *set.mutable_worker() = Worker("w0");
  set.set_key("job-1/attempt-1/rank-0");
  set.set_value("127.0.0.1:1234");
  request(15, set);
  ddlm::KeyGetRequest key_get;
  *key_get.mutable_worker() = Worker("w1");
  key_get.set_key("job-1/attempt-1/rank-0");
  request(16, key_get);
  ddlm::KeyWaitRequest wait;
  *wait.mutable_worker() = Worker("w1");
  wait.add_keys("job-1/attempt-1/rank-0");
  request(17, wait);
  ddlm::DownloadShardRequest shard;
  *shard.mutable_worker() = Worker("w0");
  *shard.mutable_attempt() = Attempt(0);
  shard.set_split(ddlm::VALID);
  request(18, shard);
  ddlm::DownloadCheckpointRequest download;
  *download.mutable_worker() = Worker("w0");
  download.set_job_id("job-1");
  download.set_checkpoint_id("e0001-s00000005");  // The one the fuzzer's set-up uploads.
  request(19, download);
  ddlm::ReportMetricsRequest metrics;
  *metrics.mutable_worker() = Worker("w0");
  *metrics.mutable_attempt() = Attempt(0);
  request(20, metrics);
  ddlm::ReportEvaluationRequest evaluation;
  *evaluation.mutable_worker() = Worker("w1");
  *evaluation.mutable_attempt() = Attempt(1);
  evaluation.set_split(ddlm::VALID);
  evaluation.set_epoch(1);
  evaluation.set_loss_sum(512.5);
  evaluation.set_tokens(100);
  request(21, evaluation);
  ddlm::CheckpointChunk chunk;
  *chunk.mutable_worker() = Worker("w0");
  *chunk.mutable_attempt() = Attempt(0);
  chunk.set_data(*ddlm::SerializeCheckpoint(c));
  request(22, chunk);
  ddlm::FinishAssignmentRequest finish;
  *finish.mutable_worker() = Worker("w1");
  *finish.mutable_attempt() = Attempt(1);
  finish.set_ok(true);
  request(23, finish);
  std::printf("seeds written under %s\n", g_root.c_str());
  return 0;
}
