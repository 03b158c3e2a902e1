#ifndef DDLM_COMMON_BASE_CLI_H_
#define DDLM_COMMON_BASE_CLI_H_

// Command-line helpers shared by ddlm's binaries (used from main() only).

#include <set>
#include <string>
#include <vector>

namespace ddlm {

// Rewrites "--log-interval=5" to "--log_interval=5" (word_language_model's spellings
// use dashes, Abseil flags use underscores) and returns the names of the flags given.
// Stops at "--".
std::set<std::string> NormalizeFlagNames(int argc, char** argv, std::vector<std::string>* storage,
                                         std::vector<char*>* new_argv);

// The common start of ddlm's main(): re-executes with OPENBLAS_CORETYPE set if
// OpenBLAS chose kernels far below what the CPU runs (common/base/blas_coretype.h), changes
// to the `bazel run` caller's directory,
// sets the usage message, normalizes dashed flag names, parses the flags with Abseil,
// and exits with status 2 naming `program` on a stray positional argument. Returns the
// names of the flags given on the command line.
std::set<std::string> ParseFlagsOrExit(int argc, char** argv, const char* program, const char* usage);

// When run by `bazel run`, changes to the directory the user ran it from, so that
// relative paths in flags mean what the user expects.
void ChdirToBuildWorkingDirectory();

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_CLI_H_
