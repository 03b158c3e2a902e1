#ifndef DDLM_COMMON_BASE_BLAS_CORETYPE_H_
#define DDLM_COMMON_BASE_BLAS_CORETYPE_H_

// OpenBLAS picks its kernels by CPU model. On a CPU it does not know (a newer one, or a
// virtual machine's that reports only "Intel(R) Xeon(R) Processor"), Debian's OpenBLAS
// 0.3.21 falls back to its oldest kernels (Prescott: SSE3). On one such machine, with
// AVX-512, a 2048² float matmul then ran at 35 GFLOP/s instead of 259, and training the
// default LSTM 4x slower. OPENBLAS_CORETYPE overrides the choice, but OpenBLAS reads it
// as it loads, before main() runs; so the fix re-executes the process with it set.
//
// Threading: call ReexecIfOpenBlasMisdetected first thing in main(), before any thread
// of the program's own starts.

#include <string>

namespace ddlm {

struct CpuFeatures {
  bool avx512 = false;  // AVX-512 F, BW and VL.
  bool avx2_fma = false;
};

CpuFeatures DetectCpuFeatures();

// The OPENBLAS_CORETYPE to use when OpenBLAS chose `corename` on a CPU with `cpu`, or ""
// to leave OpenBLAS's choice alone (it chose kernels that use what the CPU has).
std::string BetterOpenBlasCore(const std::string& corename, const CpuFeatures& cpu);

// If OpenBLAS is loaded, OPENBLAS_CORETYPE is unset and BetterOpenBlasCore says so,
// sets OPENBLAS_CORETYPE and re-executes this binary with the same arguments (it does
// not return then), without printing anything. Otherwise returns at once.
void ReexecIfOpenBlasMisdetected(char** argv);

// The core OpenBLAS had chosen before ReexecIfOpenBlasMisdetected restarted this process,
// or "" if it did not.
std::string RestartedFromOpenBlasCore();

// OpenBLAS's chosen core ("SkylakeX", "Prescott", ...), or "" if OpenBLAS is not loaded.
std::string OpenBlasCoreName();

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_BLAS_CORETYPE_H_
