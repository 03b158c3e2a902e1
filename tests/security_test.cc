// End to end, with TLS and tokens on: a real coordinator (its own CA, a tokens file)
// and real workers on loopback, attacked the way a host on the same network would.

#include <cstdlib>
#include <memory>
#include <string>

#include <google/protobuf/descriptor.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/base/subprocess.h"
#include "common/transport/certificates.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/job_service.grpc.pb.h"
#include "proto/worker_service.grpc.pb.h"
#include "tests/cluster.h"
#include "tests/reflection/reflection_client.h"

namespace ddlm {
namespace {

using ::ddlm::testing::Cluster;
using ::ddlm::testing::FinalState;
using ::ddlm::testing::ReflectionClient;
using ::ddlm::testing::SmallJob;
using ::testing::Contains;
using ::testing::HasSubstr;

constexpr char kAlice[] = "aaaaaaaaaaaaaaaaaaaaaaaa-alice";  // admin
constexpr char kBob[] = "bbbbbbbbbbbbbbbbbbbbbbbb-bob";      // user
constexpr char kCarol[] = "cccccccccccccccccccccccc-carol";  // user
constexpr char kRack1[] = "dddddddddddddddddddddddd-rack1";  // worker
constexpr char kRack2[] = "eeeeeeeeeeeeeeeeeeeeeeee-rack2";  // worker

std::string StateDir(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir ? dir : "/tmp", "/security_", name);
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Cluster>(StateDir(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    ASSERT_TRUE(cluster_->Secure(absl::StrCat(kAlice, " admin alice\n", kBob, " user bob\n", kCarol, " user carol\n",
                                              kRack1, " worker rack1\n", kRack2, " worker rack2\n"),
                                 kBob));
    ASSERT_TRUE(cluster_->Start());
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& token) {
    return grpc::CreateChannel(cluster_->address(), cluster_->Credentials(token));
  }
  std::unique_ptr<JobService::Stub> Jobs(const std::string& token) { return JobService::NewStub(Channel(token)); }
  std::unique_ptr<WorkerService::Stub> Workers(const std::string& token) {
    return WorkerService::NewStub(Channel(token));
  }

  std::unique_ptr<Cluster> cluster_;
};

template <typename Stub, typename Request, typename Response>
grpc::StatusCode Call(Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                      const Request& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  Response response;
  return (stub.*method)(&context, request, &response).error_code();
}

// Every method of both services, called through reflection (as grpcurl does) with no
// token, a wrong one, and one of the wrong role.
TEST_F(SecurityTest, EveryRpcIsRefusedWithoutAValidToken) {
  for (const auto& [who, token] : std::vector<std::pair<std::string, std::string>>{
           {"no token", ""}, {"a wrong token", "ffffffffffffffffffffffff-nobody"}}) {
    ReflectionClient reflection(Channel(token));
    for (const char* name : {"ddlm.JobService", "ddlm.WorkerService"}) {
      const google::protobuf::ServiceDescriptor* service =
          google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
      ASSERT_NE(service, nullptr) << name;
      for (int i = 0; i < service->method_count(); ++i) {
        const google::protobuf::MethodDescriptor* method = service->method(i);
        absl::StatusCode code;
        if (method->client_streaming()) {  // UploadCheckpoint: the generated stub.
          grpc::ClientContext context;
          CheckpointInfo info;
          auto writer = Workers(token)->UploadCheckpoint(&context, &info);
          CheckpointChunk chunk;
          chunk.set_data(std::string(1000, 'x'));
          writer->Write(chunk);
          writer->WritesDone();
          code = static_cast<absl::StatusCode>(writer->Finish().error_code());
        } else if (method->server_streaming()) {
          code = reflection.CallServerStreaming(method->full_name(), "{}", 1).status().code();
        } else {
          code = reflection.CallUnary(method->full_name(), "{}").status().code();
        }
        EXPECT_EQ(code, absl::StatusCode::kUnauthenticated) << method->full_name() << " with " << who;
      }
    }
  }
  // A worker token opens no JobService method, a user token no WorkerService method.
  EXPECT_EQ(Call(*Jobs(kRack1), &JobService::Stub::ListJobs, ListJobsRequest()), grpc::PERMISSION_DENIED);
  RegisterRequest registration;
  registration.mutable_worker()->set_worker_id("w9");
  registration.mutable_worker()->set_incarnation(1);
  registration.set_host("127.0.0.1");
  registration.set_device("cpu");
  EXPECT_EQ(Call(*Workers(kBob), &WorkerService::Stub::Register, registration), grpc::PERMISSION_DENIED);
  EXPECT_EQ(Call(*Workers(kAlice), &WorkerService::Stub::Register, registration), grpc::PERMISSION_DENIED);
}

TEST_F(SecurityTest, AUserCannotTouchAnotherUsersJob) {
  absl::StatusOr<Job> job = cluster_->Submit(SmallJob(1, 1));  // Bob's; no workers: it waits.
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->owner(), "bob");
  auto carol = Jobs(kCarol);
  GetJobRequest get;
  get.set_job_id(job->id());
  EXPECT_EQ(Call(*carol, &JobService::Stub::GetJob, get), grpc::PERMISSION_DENIED);
  CancelJobRequest cancel;
  cancel.set_job_id(job->id());
  EXPECT_EQ(Call(*carol, &JobService::Stub::CancelJob, cancel), grpc::PERMISSION_DENIED);
  ResumeJobRequest resume;
  resume.set_job_id(job->id());
  EXPECT_EQ(Call(*carol, &JobService::Stub::ResumeJob, resume), grpc::PERMISSION_DENIED);
  DeleteJobRequest remove;
  remove.set_job_id(job->id());
  EXPECT_EQ(Call(*carol, &JobService::Stub::DeleteJob, remove), grpc::PERMISSION_DENIED);
  ListCheckpointsRequest checkpoints;
  checkpoints.set_job_id(job->id());
  EXPECT_EQ(Call(*carol, &JobService::Stub::ListCheckpoints, checkpoints), grpc::PERMISSION_DENIED);
  GenerateRequest generate;
  generate.set_job_id(job->id());
  EXPECT_EQ(Call(*carol, &JobService::Stub::Generate, generate), grpc::PERMISSION_DENIED);
  ScoreTextRequest score;
  score.set_job_id(job->id());
  score.set_text("a b");
  EXPECT_EQ(Call(*carol, &JobService::Stub::ScoreText, score), grpc::PERMISSION_DENIED);
  AttentionRequest attention;
  attention.set_job_id(job->id());
  attention.set_text("a b");
  EXPECT_EQ(Call(*carol, &JobService::Stub::Attention, attention), grpc::PERMISSION_DENIED);
  {
    grpc::ClientContext context;
    auto reader = carol->GenerateStream(&context, generate);
    GenerateResponse piece;
    EXPECT_FALSE(reader->Read(&piece));
    EXPECT_EQ(reader->Finish().error_code(), grpc::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext context;
    FetchCheckpointRequest fetch;
    fetch.set_job_id(job->id());
    auto reader = carol->FetchCheckpoint(&context, fetch);
    DataChunk chunk;
    EXPECT_FALSE(reader->Read(&chunk));
    EXPECT_EQ(reader->Finish().error_code(), grpc::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext context;
    WatchJobRequest watch;
    watch.set_job_id(job->id());
    auto reader = carol->WatchJob(&context, watch);
    JobEvent event;
    EXPECT_FALSE(reader->Read(&event));
    EXPECT_EQ(reader->Finish().error_code(), grpc::PERMISSION_DENIED);
  }
  // Carol sees none of Bob's jobs; Bob sees his; Alice, an admin, sees and acts on all.
  auto list = [&](const std::string& token) {
    grpc::ClientContext context;
    ListJobsResponse response;
    EXPECT_TRUE(Jobs(token)->ListJobs(&context, {}, &response).ok());
    return response.jobs_size();
  };
  EXPECT_EQ(list(kCarol), 0);
  EXPECT_EQ(list(kBob), 1);
  EXPECT_EQ(list(kAlice), 1);
  EXPECT_EQ(Call(*Jobs(kAlice), &JobService::Stub::GetJob, get), grpc::OK);
  EXPECT_EQ(Call(*Jobs(kBob), &JobService::Stub::CancelJob, cancel), grpc::OK);
  EXPECT_EQ(cluster_->Get(job->id())->state(), CANCELLED);
}

TEST_F(SecurityTest, AnImpostorWorkerCannotRegisterOverALiveOneNorReachItsAttempt) {
  ASSERT_TRUE(cluster_->AddWorker("w0", {"--token_file=" + cluster_->TokenFile(kRack1)}));
  auto impostor = Workers(kRack2);
  RegisterRequest registration;
  registration.mutable_worker()->set_worker_id("w0");
  registration.mutable_worker()->set_incarnation(424242);
  registration.set_host("127.0.0.1");
  registration.set_device("cpu");
  EXPECT_EQ(Call(*impostor, &WorkerService::Stub::Register, registration), grpc::PERMISSION_DENIED);
  HeartbeatRequest heartbeat;
  *heartbeat.mutable_worker() = registration.worker();
  EXPECT_EQ(Call(*impostor, &WorkerService::Stub::Heartbeat, heartbeat), grpc::PERMISSION_DENIED);
  DeregisterRequest leave;
  *leave.mutable_worker() = registration.worker();
  EXPECT_EQ(Call(*impostor, &WorkerService::Stub::Deregister, leave), grpc::PERMISSION_DENIED);
  KeySetRequest as_w0;
  *as_w0.mutable_worker() = registration.worker();
  as_w0.set_key("job-1/attempt-1/rank-0");
  as_w0.set_value("hijacked");
  EXPECT_EQ(Call(*impostor, &WorkerService::Stub::KeySet, as_w0), grpc::PERMISSION_DENIED);
  {
    grpc::ClientContext context;
    StreamCommandsRequest stream;
    *stream.mutable_worker() = registration.worker();
    auto reader = impostor->StreamCommands(&context, stream);
    WorkerCommand command;
    EXPECT_FALSE(reader->Read(&command));
    EXPECT_EQ(reader->Finish().error_code(), grpc::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext context;
    CheckpointInfo info;
    auto writer = impostor->UploadCheckpoint(&context, &info);
    CheckpointChunk chunk;
    *chunk.mutable_worker() = registration.worker();
    chunk.mutable_attempt()->set_job_id("job-1");
    chunk.mutable_attempt()->set_attempt(1);
    chunk.set_data("not even a checkpoint");
    writer->Write(chunk);
    writer->WritesDone();
    EXPECT_EQ(writer->Finish().error_code(), grpc::PERMISSION_DENIED);
  }

  // Bob's job runs on w0. The impostor, registered under an id of its own, reaches
  // none of that attempt: not its shards, checkpoints or rendezvous keys.
  JobSpec spec = SmallJob(1, 2);
  spec.mutable_checkpoint()->set_every_n_steps(5);
  absl::StatusOr<Job> job = cluster_->Submit(spec);
  ASSERT_TRUE(job.ok()) << job.status();
  std::string checkpoint_id;
  cluster_->Watch(job->id(), [&](const JobEvent& e) {
    if (e.has_checkpoint()) checkpoint_id = e.checkpoint().id();
    return !checkpoint_id.empty();
  });
  ASSERT_FALSE(checkpoint_id.empty());

  // Claiming w0 exactly (its id and live incarnation, rank 0 of the running attempt):
  // everything about the call is right but the credential, so only the binding of w0's
  // id to the credential that registered it can refuse it, and it must.
  WorkerRef as_w0_now;
  {
    grpc::ClientContext context;
    ListWorkersResponse workers;
    ASSERT_TRUE(Jobs(kAlice)->ListWorkers(&context, {}, &workers).ok());
    for (const WorkerInfo& w : workers.workers()) {
      if (w.worker_id() == "w0") {
        as_w0_now.set_worker_id(w.worker_id());
        as_w0_now.set_incarnation(w.incarnation());
      }
    }
    ASSERT_EQ(as_w0_now.worker_id(), "w0");
  }
  // The attempt's shard, a kept checkpoint and a rendezvous key, asked for as `as`:
  // each must be refused with `code`.
  auto expect_refused = [&](const WorkerRef& as, grpc::StatusCode code) {
    {
      grpc::ClientContext context;
      DownloadShardRequest shard;
      *shard.mutable_worker() = as;
      shard.mutable_attempt()->set_job_id(job->id());
      shard.mutable_attempt()->set_attempt(1);
      shard.mutable_attempt()->set_rank(0);
      shard.set_split(TRAIN);
      auto reader = impostor->DownloadShard(&context, shard);
      DataChunk chunk;
      EXPECT_FALSE(reader->Read(&chunk));
      EXPECT_EQ(reader->Finish().error_code(), code) << "DownloadShard as " << as.worker_id();
    }
    {
      grpc::ClientContext context;
      DownloadCheckpointRequest download;
      *download.mutable_worker() = as;
      download.set_job_id(job->id());
      download.set_checkpoint_id(checkpoint_id);
      auto reader = impostor->DownloadCheckpoint(&context, download);
      DataChunk chunk;
      EXPECT_FALSE(reader->Read(&chunk));
      EXPECT_EQ(reader->Finish().error_code(), code) << "DownloadCheckpoint as " << as.worker_id();
    }
    KeySetRequest key;
    *key.mutable_worker() = as;
    key.set_key(absl::StrCat(job->id(), "/attempt-1/rank-0"));
    key.set_value("hijacked");
    EXPECT_EQ(Call(*impostor, &WorkerService::Stub::KeySet, key), code) << "KeySet as " << as.worker_id();
  };
  expect_refused(as_w0_now, grpc::PERMISSION_DENIED);

  // Under an id of its own, the impostor is in no attempt: ABORTED, as any worker that
  // asks for an attempt it does not run.
  registration.mutable_worker()->set_worker_id("evil");
  ASSERT_EQ(Call(*impostor, &WorkerService::Stub::Register, registration), grpc::OK);
  expect_refused(registration.worker(), grpc::ABORTED);
  // The real worker went on undisturbed.
  EXPECT_EQ(FinalState(cluster_->Watch(job->id())), SUCCEEDED);
}

TEST_F(SecurityTest, ReflectionListsAndCallsJobServiceOverTlsWithAToken) {
  ReflectionClient reflection(Channel(kAlice));
  auto services = reflection.ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, Contains("ddlm.JobService"));
  auto methods = reflection.ListMethods("ddlm.JobService");
  ASSERT_TRUE(methods.ok()) << methods.status();
  EXPECT_THAT(*methods, Contains("ddlm.JobService.SubmitJob"));
  ASSERT_TRUE(cluster_->Submit(SmallJob(1, 1)).ok());
  auto listed = reflection.CallUnary("ddlm.JobService/ListJobs", "{}");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_THAT(*listed, HasSubstr("\"owner\":\"bob\""));
}

}  // namespace
}  // namespace ddlm

namespace ddlm {
namespace {

// A coordinator that crashes and comes back on its port is found again by its workers
// over TLS, as in plain text (tests/chaos): the worker's registration waits for the new
// connection's TLS handshake instead of failing at once and leaving it undriven, which
// kept a restarted coordinator out of reach for minutes.
TEST_F(SecurityTest, WorkersFindARestartedCoordinatorOverTls) {
  ASSERT_TRUE(cluster_->AddWorker("w0", {"--token_file=" + cluster_->TokenFile(kRack1)}));
  ASSERT_TRUE(cluster_->AddWorker("w1", {"--token_file=" + cluster_->TokenFile(kRack2)}));
  ASSERT_TRUE(cluster_->CrashAndRestartCoordinator());
  for (auto& worker : cluster_->workers()) {
    // The second registration, with the new coordinator (the first matched in AddWorker).
    EXPECT_TRUE(worker->WaitForLine("registered as incarnation", nullptr, std::chrono::seconds(30)))
        << worker->output();
  }
  absl::StatusOr<Job> job = cluster_->Submit(SmallJob(2, 1));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(FinalState(cluster_->Watch(job->id())), SUCCEEDED);
}

// A worker that does not trust the coordinator's certificate says so, instead of
// waiting on a connection that will never come.
TEST_F(SecurityTest, AWorkerWithTheWrongCaSaysWhyItCannotConnect) {
  absl::StatusOr<CertificateFiles> other = MakeCertificates(StateDir("other_ca"), {});
  ASSERT_TRUE(other.ok()) << other.status();
  Subprocess worker({"worker/ddlm_worker", "--coordinator=" + cluster_->address(), "--worker_id=w9", "--host=127.0.0.1",
                     "--ca_cert=" + other->ca_cert, "--token_file=" + cluster_->TokenFile(kRack1)});
  std::string line;
  ASSERT_TRUE(worker.WaitForLine("coordinator unreachable", &line)) << worker.output();
  EXPECT_THAT(line, ::testing::Not(::testing::HasSubstr("DEADLINE_EXCEEDED"))) << line;
  EXPECT_THAT(line, ::testing::ContainsRegex("[Hh]andshake|certificate|ssl|SSL|TLS")) << line;
}

}  // namespace
}  // namespace ddlm
