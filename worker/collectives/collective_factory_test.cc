#include "worker/collectives/collective_factory.h"

#include <torch/torch.h>

#include <memory>
#include <string>

#include "common/base/key_value_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

CollectiveOptions SingleRank() {
  CollectiveOptions options;
  options.store_prefix = "job/0/";
  options.timeout = absl::Seconds(20);
  return options;
}

TEST(CreateCollectiveTest, OtherDeviceTypesAreInvalidArgumentsNamingTheDevice) {
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> collective =
      CreateCollective(torch::Device(torch::kMeta), CollectiveBackend::kAuto, SingleRank(), &store);
  ASSERT_FALSE(collective.ok());
  EXPECT_EQ(collective.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(collective.status().message(), HasSubstr("'meta'"));
}

TEST(ParseCollectiveBackendTest, NamesRoundTripAndOthersAreRefusedByName) {
  for (CollectiveBackend b : {CollectiveBackend::kAuto, CollectiveBackend::kGloo, CollectiveBackend::kNccl}) {
    absl::StatusOr<CollectiveBackend> parsed = ParseCollectiveBackend(CollectiveBackendName(b));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, b);
  }
  for (const std::string name : {"mpi", "", "Gloo", "auto "}) {
    absl::StatusOr<CollectiveBackend> bad = ParseCollectiveBackend(name);
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(bad.status().message(), HasSubstr("'" + name + "'"));
  }
}

TEST(CreateCollectiveTest, CpuGivesAWorkingGlooCollective) {
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> collective =
      CreateCollective(torch::kCPU, CollectiveBackend::kAuto, SingleRank(), &store);
  ASSERT_TRUE(collective.ok()) << collective.status();
  torch::Tensor t = torch::arange(3, torch::kFloat32);
  ASSERT_TRUE((*collective)->AllReduceSum(t).ok());
  EXPECT_TRUE(torch::equal(t, torch::arange(3, torch::kFloat32)));
}

TEST(CreateCollectiveTest, GlooBackendServesCudaDevicesThroughTheHost) {
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> collective =
      CreateCollective(torch::Device(torch::kCUDA, 0), CollectiveBackend::kGloo, SingleRank(), &store);
  ASSERT_TRUE(collective.ok()) << collective.status();
  EXPECT_TRUE((*collective)->device().is_cpu());
}

TEST(CreateCollectiveTest, NcclOnTheCpuIsAnInvalidArgument) {
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> nccl_cpu =
      CreateCollective(torch::kCPU, CollectiveBackend::kNccl, SingleRank(), &store);
  EXPECT_EQ(nccl_cpu.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nccl_cpu.status().message(), HasSubstr("needs a CUDA device"));
}

TEST(CreateCollectiveTest, CudaWithoutCudaBuildIsUnimplemented) {
#ifdef DDLM_WITH_CUDA
  GTEST_SKIP() << "built with --config=cuda; NCCL needs a GPU to test";
#else
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> collective =
      CreateCollective(torch::Device(torch::kCUDA, 0), CollectiveBackend::kAuto, SingleRank(), &store);
  EXPECT_EQ(collective.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(collective.status().message(), HasSubstr("--config=cuda"));
#endif
}

}  // namespace
}  // namespace ddlm
