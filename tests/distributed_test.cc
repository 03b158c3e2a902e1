// End to end: a real coordinator and real workers on loopback, driven through the
// JobService stub and through server reflection (what grpcurl does).

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/training/checkpoint.h"
#include "common/training/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/worker_service.grpc.pb.h"
#include "tests/cluster.h"
#include "tests/reflection/reflection_client.h"

namespace ddlm {
namespace {

using ::ddlm::testing::Cluster;
using ::ddlm::testing::Epochs;
using ::ddlm::testing::FinalState;
using ::ddlm::testing::ReflectionClient;
using ::ddlm::testing::SmallJob;
using ::testing::Contains;
using ::testing::HasSubstr;

std::string StateDir(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

TEST(DistributedTest, TwoWorkerJobCompletesWithCheckpointsAndAnswersReflection) {
  const std::string state_dir = StateDir("two_workers");
  Cluster cluster(state_dir);
  ASSERT_TRUE(cluster.Start()) << cluster.coordinator().output();
  ASSERT_TRUE(cluster.AddWorker("w0"));
  ASSERT_TRUE(cluster.AddWorker("w1"));

  auto job = cluster.Submit(SmallJob(2, 3));
  ASSERT_TRUE(job.ok()) << job.status();
  std::vector<JobEvent> events = cluster.Watch(job->id());
  ASSERT_EQ(FinalState(events), SUCCEEDED) << cluster.workers()[0]->output();

  // Perplexity falls, and live training metrics arrived combined over both ranks.
  std::vector<EpochResult> epochs = Epochs(events);
  ASSERT_EQ(epochs.size(), 3u);
  EXPECT_LT(epochs[2].val_ppl(), epochs[0].val_ppl());
  int trainings = 0;
  for (const JobEvent& e : events) trainings += e.has_training();
  EXPECT_GE(trainings, 3 * 3);  // Batches 10, 20, 30 of each epoch.

  // Checkpoints arrived: listed with their CRC, and the files verify and load.
  grpc::ClientContext context;
  ListCheckpointsRequest list;
  list.set_job_id(job->id());
  ListCheckpointsResponse kept;
  ASSERT_TRUE(cluster.stub().ListCheckpoints(&context, list, &kept).ok());
  ASSERT_FALSE(kept.checkpoints().empty());
  const CheckpointInfo& latest = kept.checkpoints(kept.checkpoints_size() - 1);
  EXPECT_EQ(latest.epoch(), 4);
  absl::StatusOr<Checkpoint> file =
      ReadCheckpointFile(state_dir + "/jobs/" + job->id() + "/checkpoints/" + latest.id() + ".ckpt");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->header.position().epoch(), 4);
  EXPECT_TRUE(file->tensors.count("rank/1/rng/cpu"));  // Rank 1's generator travels too.
  auto model = BuildModel(file->header.spec().model(), file->header.vocabulary_size());
  ASSERT_TRUE(model.ok());
  EXPECT_TRUE(RestoreModel(*file, **model).ok());

  // Status and listing through the reflection protocol, as grpcurl would do it.
  ReflectionClient reflection(grpc::CreateChannel(cluster.address(), grpc::InsecureChannelCredentials()));
  auto services = reflection.ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, Contains("ddlm.JobService"));
  EXPECT_THAT(*services, Contains("ddlm.WorkerService"));
  auto status = reflection.CallUnary("ddlm.JobService/GetJob", "{\"job_id\": \"" + job->id() + "\"}");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_THAT(*status, HasSubstr("\"state\":\"SUCCEEDED\""));
  EXPECT_THAT(*status, HasSubstr("\"test_ppl\""));
  auto listed = reflection.CallUnary("ddlm.JobService/ListJobs", "{}");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_THAT(*listed, HasSubstr("\"id\":\"" + job->id() + "\""));
  auto missing = reflection.CallUnary("ddlm.JobService/GetJob", "{\"job_id\": \"job-99\"}");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  auto generated =
      reflection.CallUnary("ddlm.JobService/Generate", "{\"job_id\": \"" + job->id() + "\", \"words\": 30}");
  ASSERT_TRUE(generated.ok()) << generated.status();
  EXPECT_THAT(*generated, HasSubstr("\"text\""));
  // A job submitted as JSON, the way grpcurl -d sends it, is validated field by field.
  auto bad = reflection.CallUnary("ddlm.JobService/SubmitJob",
                                  "{\"spec\": {\"data\": {\"path\": \"configs/quickstart_data\", "
                                  "\"batch_size\": -3}}}");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("batch_size"));
}

TEST(DistributedTest, CancelStopsWorkersPromptlyAndResumeFinishesTheJob) {
  Cluster cluster(StateDir("cancel"));
  ASSERT_TRUE(cluster.Start());
  ASSERT_TRUE(cluster.AddWorker("w0"));
  ASSERT_TRUE(cluster.AddWorker("w1"));
  JobSpec spec = SmallJob(2, 3);
  spec.mutable_schedule()->clear_max_batches_per_epoch();  // Long epochs: cancel lands mid-epoch.
  spec.mutable_schedule()->set_log_interval(5);
  auto job = cluster.Submit(spec);
  ASSERT_TRUE(job.ok());
  // Wait for the first checkpoint, then for training in epoch 2.
  std::vector<JobEvent> events =
      cluster.Watch(job->id(), [](const JobEvent& e) { return e.has_training() && e.training().epoch() == 2; });
  ASSERT_FALSE(events.empty());
  const int64_t seen = events.back().sequence();
  {
    grpc::ClientContext context;
    CancelJobRequest cancel;
    cancel.set_job_id(job->id());
    Job cancelled;
    ASSERT_TRUE(cluster.stub().CancelJob(&context, cancel, &cancelled).ok());
  }
  std::vector<JobEvent> after = cluster.Watch(job->id(), nullptr, seen);
  ASSERT_EQ(FinalState(after), CANCELLED);
  // Both ranks left training after the same step (agreed through the all-reduce, so
  // that neither waits in a collective the other has left), mid-epoch, and both
  // workers are free again. (How many steps ran between the CancelJob call and the
  // command's arrival depends on timing; that the ranks agree does not.)
  std::string stop0, stop1;
  ASSERT_TRUE(cluster.workers()[0]->WaitForLine("stopped at epoch ", &stop0)) << cluster.workers()[0]->output();
  ASSERT_TRUE(cluster.workers()[1]->WaitForLine("stopped at epoch ", &stop1)) << cluster.workers()[1]->output();
  const std::string at0 = stop0.substr(stop0.find("stopped at epoch "));
  EXPECT_EQ(at0, stop1.substr(stop1.find("stopped at epoch ")));
  EXPECT_THAT(at0, ::testing::StartsWith("stopped at epoch 2, batch "));
  for (const JobEvent& e : after) EXPECT_FALSE(e.has_epoch());
  {
    grpc::ClientContext context;
    ListWorkersResponse workers;
    ASSERT_TRUE(cluster.stub().ListWorkers(&context, {}, &workers).ok());
    ASSERT_EQ(workers.workers_size(), 2);
    for (const WorkerInfo& w : workers.workers()) EXPECT_EQ(w.state(), IDLE) << w.worker_id();
  }

  // Resume from the latest checkpoint (end of epoch 1): the job finishes all epochs.
  grpc::ClientContext context;
  ResumeJobRequest resume;
  resume.set_job_id(job->id());
  Job resumed;
  ASSERT_TRUE(cluster.stub().ResumeJob(&context, resume, &resumed).ok());
  EXPECT_THAT(resumed.resumed_from(), ::testing::StartsWith("e0002-"));  // End of epoch 1.
  std::vector<JobEvent> rest = cluster.Watch(job->id(), nullptr, after.back().sequence());
  ASSERT_EQ(FinalState(rest), SUCCEEDED) << cluster.workers()[0]->output();
  std::vector<EpochResult> epochs = Epochs(rest);
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_EQ(epochs[0].epoch(), 2);
  EXPECT_EQ(epochs[1].epoch(), 3);
  EXPECT_EQ(cluster.Get(job->id())->attempt(), 2);
}

TEST(DistributedTest, StopAndResumeEqualsTrainingStraightThrough) {
  Cluster cluster(StateDir("exact_resume"));
  ASSERT_TRUE(cluster.Start());
  ASSERT_TRUE(cluster.AddWorker("w0"));
  ASSERT_TRUE(cluster.AddWorker("w1"));
  // Dropout on: the ranks' generator states must come back exactly too.
  JobSpec spec = SmallJob(2, 2);
  ASSERT_GT(spec.model().dropout(), 0);

  auto straight = cluster.Submit(spec);
  ASSERT_TRUE(straight.ok());
  std::vector<EpochResult> a = Epochs(cluster.Watch(straight->id()));
  ASSERT_EQ(a.size(), 2u);

  spec.mutable_schedule()->set_epochs(1);
  auto stopped = cluster.Submit(spec);
  ASSERT_TRUE(stopped.ok());
  std::vector<JobEvent> first = cluster.Watch(stopped->id());
  ASSERT_EQ(FinalState(first), SUCCEEDED);
  grpc::ClientContext context;
  ResumeJobRequest resume;
  resume.set_job_id(stopped->id());
  resume.set_epochs(2);
  Job resumed;
  ASSERT_TRUE(cluster.stub().ResumeJob(&context, resume, &resumed).ok());
  std::vector<EpochResult> b = Epochs(cluster.Watch(stopped->id(), nullptr, first.back().sequence()));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].epoch(), 2);
  // Bit-identical on CPU: same data order, weights, optimizer, lr and dropout masks.
  EXPECT_EQ(a[0].val_loss(), Epochs(first)[0].val_loss());
  EXPECT_EQ(a[1].val_loss(), b[0].val_loss());
  EXPECT_EQ(a[1].lr(), b[0].lr());
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

TEST(DistributedTest, MidEpochCheckpointResumesExactly) {
  Cluster cluster(StateDir("mid_epoch"));
  ASSERT_TRUE(cluster.Start());
  ASSERT_TRUE(cluster.AddWorker("w0"));
  ASSERT_TRUE(cluster.AddWorker("w1"));
  JobSpec spec = SmallJob(2, 2);  // 40 steps per epoch.
  spec.mutable_checkpoint()->set_every_n_steps(30);
  spec.mutable_checkpoint()->set_keep_last(10);
  auto job = cluster.Submit(spec);
  ASSERT_TRUE(job.ok());
  std::vector<JobEvent> first = cluster.Watch(job->id());
  ASSERT_EQ(FinalState(first), SUCCEEDED);
  std::vector<EpochResult> a = Epochs(first);
  ASSERT_EQ(a.size(), 2u);
  bool found = false;
  for (const JobEvent& e : first) found |= e.has_checkpoint() && e.checkpoint().id() == "e0001-s00000030";
  ASSERT_TRUE(found);

  // Resume from step 30, in the middle of epoch 1: both ranks' hidden states and
  // generators come back, and both epochs end exactly as before.
  grpc::ClientContext context;
  ResumeJobRequest resume;
  resume.set_job_id(job->id());
  resume.set_checkpoint_id("e0001-s00000030");
  Job resumed;
  ASSERT_TRUE(cluster.stub().ResumeJob(&context, resume, &resumed).ok());
  std::vector<JobEvent> second = cluster.Watch(job->id(), nullptr, first.back().sequence());
  ASSERT_EQ(FinalState(second), SUCCEEDED);
  std::vector<EpochResult> b = Epochs(second);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(a[0].val_loss(), b[0].val_loss());
  EXPECT_EQ(a[1].val_loss(), b[1].val_loss());
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

GenerateResponse Sample(Cluster& cluster, const std::string& job_id, int words, uint64_t seed, int top_k,
                        double temperature = 1.0) {
  grpc::ClientContext context;
  GenerateRequest request;
  request.set_job_id(job_id);
  request.set_words(words);
  request.set_seed(seed);
  request.set_top_k(top_k);
  request.set_temperature(temperature);
  GenerateResponse response;
  grpc::Status status = cluster.stub().Generate(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

int CountWords(const std::string& text) {
  return static_cast<int>(
      std::vector<std::string>(absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty())).size());
}

TEST(DistributedTest, ATransformerJobAndAnLstmJobRunAtOnceAndGenerateHonoursItsOptions) {
  Cluster cluster(StateDir("two_jobs"));
  ASSERT_TRUE(cluster.Start());
  for (const char* w : {"w0", "w1", "w2"}) ASSERT_TRUE(cluster.AddWorker(w));
  JobSpec transformer = SmallJob(2, 2);
  transformer.set_name("transformer");
  transformer.mutable_model()->set_type(TRANSFORMER);
  transformer.mutable_model()->set_nhead(2);
  transformer.mutable_optimizer()->set_lr(5);
  JobSpec lstm = SmallJob(1, 2);
  lstm.set_name("lstm");
  auto t = cluster.Submit(transformer);
  auto l = cluster.Submit(lstm);
  ASSERT_TRUE(t.ok() && l.ok());
  // Both start at once (once their corpus is tokenized), on distinct workers.
  auto running = [](const JobEvent& e) { return e.has_state() && e.state().state() == RUNNING; };
  cluster.Watch(t->id(), running);
  cluster.Watch(l->id(), running);
  const Job t_running = *cluster.Get(t->id());
  const Job l_running = *cluster.Get(l->id());
  EXPECT_EQ(t_running.state(), RUNNING);
  EXPECT_EQ(l_running.state(), RUNNING);
  ASSERT_EQ(t_running.workers_size(), 2);
  ASSERT_EQ(l_running.workers_size(), 1);
  std::vector<std::string> workers(t_running.workers().begin(), t_running.workers().end());
  workers.push_back(l_running.workers(0));
  std::sort(workers.begin(), workers.end());
  EXPECT_THAT(workers, ::testing::ElementsAre("w0", "w1", "w2"));

  std::vector<JobEvent> te = cluster.Watch(t->id());
  std::vector<JobEvent> le = cluster.Watch(l->id());
  ASSERT_EQ(FinalState(te), SUCCEEDED) << cluster.workers()[0]->output();
  ASSERT_EQ(FinalState(le), SUCCEEDED) << cluster.workers()[2]->output();
  std::vector<EpochResult> epochs = Epochs(te);
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_LT(epochs[1].val_ppl(), epochs[0].val_ppl());
  EXPECT_EQ(Epochs(le).size(), 2u);

  // Generation, end to end: the word count, the seed's determinism, and top_k 1
  // (greedy after the random first word: the temperature changes nothing).
  GenerateResponse a = Sample(cluster, t->id(), 30, 7, 0);
  EXPECT_EQ(CountWords(a.text()), 30) << a.text();
  EXPECT_EQ(Sample(cluster, t->id(), 30, 7, 0).text(), a.text());
  EXPECT_NE(Sample(cluster, t->id(), 30, 8, 0).text(), a.text());
  GenerateResponse greedy = Sample(cluster, t->id(), 12, 1, 1);
  EXPECT_EQ(CountWords(greedy.text()), 12);
  EXPECT_EQ(Sample(cluster, t->id(), 12, 1, 1, 0.3).text(), greedy.text());
  EXPECT_NE(Sample(cluster, t->id(), 12, 1, 0, 2.0).text(), greedy.text());
  EXPECT_EQ(CountWords(Sample(cluster, l->id(), 5, 1, 0).text()), 5);
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

TEST(DistributedTest, ACorpusOutsideTheDataRootsIsRefusedTheSameWayWhetherOrNotItExists) {
  // The coordinator serves only its working directory and the committed corpus.
  Cluster cluster(StateDir("data_roots"));
  ASSERT_TRUE(cluster.Start());
  auto refusal = [&](const std::string& path) {
    JobSpec spec = SmallJob(1, 1);
    spec.mutable_data()->set_path(path);
    absl::StatusOr<Job> job = cluster.Submit(spec);
    EXPECT_EQ(job.status().code(), absl::StatusCode::kPermissionDenied) << path;
    return absl::StrReplaceAll(job.status().message(), {{"'" + path + "'", "'PATH'"}});
  };
  const std::string answer = refusal("/etc");
  EXPECT_THAT(answer, HasSubstr("not inside a data directory"));
  EXPECT_EQ(refusal("/no/such/corpus"), answer);
  EXPECT_EQ(refusal("configs/../configs/quickstart_data"), answer);
  JobSpec inside = SmallJob(1, 1);
  EXPECT_TRUE(cluster.Submit(inside).ok());
  inside.mutable_data()->set_path("configs/no_such_corpus");
  EXPECT_EQ(cluster.Submit(inside).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

// The coordinator's resident memory, from /proc.
int64_t RssKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

TEST(DistributedTest, AStalledTransferIsCancelledByTheCoordinator) {
  Cluster cluster(StateDir("stalled"),
                  {"--max_transfer_s=1", "--heartbeat_interval_ms=200", "--heartbeat_timeout_ms=5000"});
  ASSERT_TRUE(cluster.Start());
  ASSERT_TRUE(cluster.AddWorker("w0"));
  JobSpec spec = SmallJob(1, 1);
  spec.mutable_model()->set_emsize(400);  // A checkpoint of about 12 MB: more than flow control lets
  spec.mutable_model()->set_nhid(400);    // through to a client that does not read.
  spec.mutable_schedule()->set_max_batches_per_epoch(4);
  absl::StatusOr<Job> job = cluster.Submit(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(FinalState(cluster.Watch(job->id())), SUCCEEDED);

  // A client that asks for the checkpoint, with no deadline of its own, and stops reading.
  grpc::ClientContext context;
  FetchCheckpointRequest fetch;
  fetch.set_job_id(job->id());
  auto reader = cluster.stub().FetchCheckpoint(&context, fetch);
  DataChunk chunk;
  ASSERT_TRUE(reader->Read(&chunk));
  ASSERT_TRUE(cluster.coordinator().WaitForLine("ran past --max_transfer_s and were cancelled"));
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The coordinator serves on.
  EXPECT_EQ(cluster.Get(job->id())->state(), SUCCEEDED);
}

TEST(DistributedTest, AFloodedOrForgedUploadIsRefusedAndTheCoordinatorsMemoryStaysBounded) {
  Cluster cluster(StateDir("upload_limits"));
  ASSERT_TRUE(cluster.Start());
  // A worker of our own, speaking the protocol by hand, made rank 0 of a job.
  auto channel = grpc::CreateChannel(cluster.address(), grpc::InsecureChannelCredentials());
  auto workers = WorkerService::NewStub(channel);
  RegisterRequest r;
  r.mutable_worker()->set_worker_id("rogue");
  r.mutable_worker()->set_incarnation(7);
  r.set_host("127.0.0.1");
  r.set_device("cpu");
  {
    grpc::ClientContext context;
    RegisterResponse registered;
    ASSERT_TRUE(workers->Register(&context, r, &registered).ok());
  }
  auto job = cluster.Submit(SmallJob(1, 1));
  ASSERT_TRUE(job.ok()) << job.status();
  WorkerCommand command;
  {
    grpc::ClientContext context;
    StreamCommandsRequest request;
    *request.mutable_worker() = r.worker();
    auto stream = workers->StreamCommands(&context, request);
    ASSERT_TRUE(stream->Read(&command));
    context.TryCancel();
    stream->Finish();
  }
  ASSERT_TRUE(command.has_assign());
  const AttemptRef attempt = command.assign().attempt();

  auto upload = [&](int64_t megabytes, const std::string& payload) {
    grpc::ClientContext context;
    CheckpointInfo info;
    auto writer = workers->UploadCheckpoint(&context, &info);
    CheckpointChunk chunk;
    *chunk.mutable_worker() = r.worker();
    *chunk.mutable_attempt() = attempt;
    for (int64_t i = 0; i < megabytes; ++i) {
      chunk.set_data(payload);
      if (!writer->Write(chunk)) break;  // The coordinator already said no.
      chunk.clear_worker();
      chunk.clear_attempt();
    }
    writer->WritesDone();
    return writer->Finish();
  };
  const int64_t before = RssKib(cluster.coordinator().pid());
  ASSERT_GT(before, 0);
  // 512 MiB of junk: refused once past the bound, never held.
  grpc::Status flood = upload(512, std::string(1 << 20, 'x'));
  EXPECT_EQ(flood.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << flood.error_message();
  const int64_t after = RssKib(cluster.coordinator().pid());
  std::printf("coordinator RSS: %lld KiB before, %lld KiB after an attempted 512 MiB upload\n",
              static_cast<long long>(before), static_cast<long long>(after));
  // Measured: +2.8 and +12.5 MiB (the job trains meanwhile); 32 MiB leaves room for the
  // allocator's noise and is a sixteenth of what the flood sent.
  EXPECT_LT(after - before, 32 * 1024) << "RSS went from " << before << " to " << after << " KiB";
  // Bytes that are not a checkpoint at all.
  grpc::Status forged = upload(1, "DDLMCKPT not really");
  EXPECT_EQ(forged.error_code(), grpc::StatusCode::DATA_LOSS) << forged.error_message();
  // And the job keeps nothing of either.
  grpc::ClientContext context;
  ListCheckpointsRequest list;
  list.set_job_id(job->id());
  ListCheckpointsResponse kept;
  ASSERT_TRUE(cluster.stub().ListCheckpoints(&context, list, &kept).ok());
  EXPECT_EQ(kept.checkpoints_size(), 0);
}

}  // namespace
}  // namespace ddlm
