#include "common/base/blas_coretype.h"

#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(BlasCoretypeTest, OldKernelsOnANewCpuAreReplaced) {
  const CpuFeatures avx512{true, true}, avx2{false, true};
  // The misdetection seen: Prescott kernels on an AVX-512 machine.
  EXPECT_EQ(BetterOpenBlasCore("Prescott", avx512), "SKYLAKEX");
  EXPECT_EQ(BetterOpenBlasCore("Haswell", avx512), "SKYLAKEX");
  EXPECT_EQ(BetterOpenBlasCore("Nehalem", avx2), "HASWELL");
  EXPECT_EQ(BetterOpenBlasCore("Sandybridge", avx2), "HASWELL");
}

TEST(BlasCoretypeTest, AGoodChoiceOrNoOpenBlasIsLeftAlone) {
  const CpuFeatures avx512{true, true}, avx2{false, true}, old{false, false};
  EXPECT_EQ(BetterOpenBlasCore("SkylakeX", avx512), "");
  EXPECT_EQ(BetterOpenBlasCore("Cooperlake", avx512), "");
  EXPECT_EQ(BetterOpenBlasCore("Zen", avx2), "");
  EXPECT_EQ(BetterOpenBlasCore("Haswell", avx2), "");
  EXPECT_EQ(BetterOpenBlasCore("Prescott", old), "");  // Nothing better to run.
  EXPECT_EQ(BetterOpenBlasCore("", avx512), "");       // OpenBLAS is not loaded.
}

}  // namespace
}  // namespace ddlm
