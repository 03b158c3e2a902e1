#include "common/training/accelerator.h"

#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(AcceleratorTest, ReportsHowItWasBuilt) {
  AcceleratorInfo info = DetectAccelerators();
#ifdef DDLM_WITH_CUDA
  EXPECT_TRUE(info.built_with_cuda);
  EXPECT_FALSE(info.nccl_version.empty());  // NCCL is linked, device or not.
  if (info.cuda_devices == 0) {
    EXPECT_FALSE(info.error.empty());
  }
#else
  EXPECT_FALSE(info.built_with_cuda);
  EXPECT_EQ(info.cuda_devices, 0);
  EXPECT_NE(info.error.find("--config=cuda"), std::string::npos);
#endif
}

}  // namespace
}  // namespace ddlm
