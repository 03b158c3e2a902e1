#include "worker/collectives/collective_factory.h"

#include <torch/torch.h>

#include <memory>
#include <string>

#include "common/key_value_store.h"
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

TEST(CreateCollectiveTest, BadDeviceStringsAreInvalidArgumentsNamingTheString) {
  InMemoryKeyValueStore store;
  for (const std::string device :
       {"tpu:0", "", "CPU", "cuda", "cuda:", "cuda:-1", "cuda:x", "cuda: 1", "cuda:0:1"}) {
    absl::StatusOr<std::unique_ptr<Collective>> collective =
        CreateCollective(device, "auto", SingleRank(), &store);
    ASSERT_FALSE(collective.ok()) << "'" << device << "'";
    EXPECT_EQ(collective.status().code(), absl::StatusCode::kInvalidArgument) << device;
    EXPECT_THAT(collective.status().message(), HasSubstr("'" + device + "'"));
  }
}

TEST(CreateCollectiveTest, CpuGivesAWorkingGlooCollective) {
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> collective =
      CreateCollective("cpu", "auto", SingleRank(), &store);
  ASSERT_TRUE(collective.ok()) << collective.status();
  torch::Tensor t = torch::arange(3, torch::kFloat32);
  ASSERT_TRUE((*collective)->AllReduceSum(t).ok());
  EXPECT_TRUE(torch::equal(t, torch::arange(3, torch::kFloat32)));
}

TEST(CreateCollectiveTest, GlooBackendServesCudaDevicesThroughTheHost) {
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> collective =
      CreateCollective("cuda:0", "gloo", SingleRank(), &store);
  ASSERT_TRUE(collective.ok()) << collective.status();
  EXPECT_TRUE((*collective)->device().is_cpu());
}

TEST(CreateCollectiveTest, BadBackendsAreInvalidArguments) {
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> bad = CreateCollective("cpu", "mpi", SingleRank(), &store);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("'mpi'"));
  absl::StatusOr<std::unique_ptr<Collective>> nccl_cpu =
      CreateCollective("cpu", "nccl", SingleRank(), &store);
  EXPECT_EQ(nccl_cpu.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nccl_cpu.status().message(), HasSubstr("needs a CUDA device"));
}

TEST(CreateCollectiveTest, CudaWithoutCudaBuildIsUnimplemented) {
#ifdef DDLM_WITH_CUDA
  GTEST_SKIP() << "built with --config=cuda; NCCL needs a GPU to test";
#else
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> collective =
      CreateCollective("cuda:0", "auto", SingleRank(), &store);
  EXPECT_EQ(collective.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(collective.status().message(), HasSubstr("--config=cuda"));
#endif
}

}  // namespace
}  // namespace ddlm
