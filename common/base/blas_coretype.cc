#include "common/base/blas_coretype.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace ddlm {

CpuFeatures DetectCpuFeatures() {
  CpuFeatures f;
  __builtin_cpu_init();
  f.avx512 =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return f;
}

std::string BetterOpenBlasCore(const std::string& corename, const CpuFeatures& cpu) {
  // Cores whose kernels use AVX-512, or at least AVX2 and FMA.
  static const std::set<std::string> kAvx512 = {"SkylakeX", "Cooperlake", "SapphireRapids"};
  static const std::set<std::string> kAvx2 = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
  if (corename.empty()) return "";
  if (cpu.avx512 && kAvx512.count(corename) == 0) return "SKYLAKEX";
  if (cpu.avx2_fma && kAvx2.count(corename) == 0) return "HASWELL";
  return "";
}

namespace {
// Set by ReexecIfOpenBlasMisdetected in the restarted process (and taken out of the
// environment, so that its children do not claim a restart of their own).
std::string& ReplacedCore() {
  static auto* core = new std::string;
  return *core;
}
}  // namespace

std::string RestartedFromOpenBlasCore() { return ReplacedCore(); }

std::string OpenBlasCoreName() {
  using GetCoreName = char* (*)();
  auto get = reinterpret_cast<GetCoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (get == nullptr) return "";
  const char* name = get();
  return name != nullptr ? name : "";
}

void ReexecIfOpenBlasMisdetected(char** argv) {
  if (const char* replaced = std::getenv("DDLM_OPENBLAS_REPLACED_CORE")) {
    ReplacedCore() = replaced;
    unsetenv("DDLM_OPENBLAS_REPLACED_CORE");
  }
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // Chosen by the user, or by us.
  const std::string chosen = OpenBlasCoreName();
  const std::string better = BetterOpenBlasCore(chosen, DetectCpuFeatures());
  if (better.empty()) return;
  // Silently (a binary's output may be its stdout and stderr together); the restarted
  // process's BLAS log line says what happened (RestartedFromOpenBlasCore).
  setenv("OPENBLAS_CORETYPE", better.c_str(), 1);
  setenv("DDLM_OPENBLAS_REPLACED_CORE", chosen.c_str(), 1);
  // The binary's own path, not /proc/self/exe, so that the process keeps its name.
  char self[PATH_MAX] = {};
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) execv(self, argv);
  // Could not re-execute: go on with OpenBLAS's choice (and leave children theirs).
  std::perror("cannot restart with OPENBLAS_CORETYPE set");
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv("DDLM_OPENBLAS_REPLACED_CORE");
}

}  // namespace ddlm
