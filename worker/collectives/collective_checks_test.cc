#include "worker/collectives/collective_checks.h"

#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

TEST(ValidateCollectiveOptionsTest, AcceptsDefaultsAndRejectsEachBadField) {
  CollectiveOptions options;
  EXPECT_TRUE(ValidateCollectiveOptions(options).ok());

  CollectiveOptions bad = options;
  bad.world_size = 0;
  EXPECT_EQ(ValidateCollectiveOptions(bad).code(), absl::StatusCode::kInvalidArgument);

  bad = options;
  bad.world_size = 2;
  bad.rank = 2;
  EXPECT_THAT(ValidateCollectiveOptions(bad).message(), HasSubstr("rank 2"));
  bad.rank = -1;
  EXPECT_EQ(ValidateCollectiveOptions(bad).code(), absl::StatusCode::kInvalidArgument);

  bad = options;
  bad.timeout = absl::ZeroDuration();
  EXPECT_EQ(ValidateCollectiveOptions(bad).code(), absl::StatusCode::kInvalidArgument);
  bad.timeout = absl::InfiniteDuration();
  EXPECT_EQ(ValidateCollectiveOptions(bad).code(), absl::StatusCode::kInvalidArgument);

  bad = options;
  bad.host = "";
  EXPECT_EQ(ValidateCollectiveOptions(bad).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckTensorTest, NamesTheOperationAndTheProblem) {
  EXPECT_TRUE(CheckTensor("op", torch::ones({2, 3}), torch::kCPU).ok());

  absl::Status status = CheckTensor("gloo Op", torch::Tensor(), torch::kCPU);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("gloo Op: tensor is undefined"));

  status = CheckTensor("op", torch::ones({2, 3}).t(), torch::kCPU);
  EXPECT_THAT(status.message(), HasSubstr("not contiguous"));

  status = CheckTensor("op", torch::ones({2}), torch::Device(torch::kCUDA, 1));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("cuda:1"));
}

TEST(CheckRootTest, RootMustBeARank) {
  EXPECT_TRUE(CheckRoot("op", 0, 1).ok());
  EXPECT_TRUE(CheckRoot("op", 2, 3).ok());
  EXPECT_EQ(CheckRoot("op", 3, 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckRoot("op", -1, 3).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ddlm
