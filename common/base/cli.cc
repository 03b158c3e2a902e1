#include "common/base/cli.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/base/blas_coretype.h"

namespace ddlm {

std::set<std::string> NormalizeFlagNames(int argc, char** argv, std::vector<std::string>* storage,
                                         std::vector<char*>* new_argv) {
  std::set<std::string> given;
  storage->assign(argv, argv + argc);
  bool done = false;
  for (int i = 1; i < argc; ++i) {
    std::string& arg = (*storage)[i];
    if (done || arg.size() < 3 || arg[0] != '-') continue;
    if (arg == "--") {
      done = true;
      continue;
    }
    size_t start = arg[1] == '-' ? 2 : 1;
    size_t end = arg.find('=');
    if (end == std::string::npos) end = arg.size();
    for (size_t j = start; j < end; ++j) {
      if (arg[j] == '-') arg[j] = '_';
    }
    std::string name = arg.substr(start, end - start);
    if (name.rfind("no", 0) == 0 && end == arg.size()) given.insert(name.substr(2));
    given.insert(name);
  }
  new_argv->clear();
  for (std::string& s : *storage) new_argv->push_back(s.data());
  new_argv->push_back(nullptr);
  return given;
}

std::set<std::string> ParseFlagsOrExit(int argc, char** argv, const char* program, const char* usage) {
  // First: it may restart the process (common/base/blas_coretype.h).
  ReexecIfOpenBlasMisdetected(argv);
  ChdirToBuildWorkingDirectory();
  absl::SetProgramUsageMessage(usage);
  std::vector<std::string> storage;
  std::vector<char*> args;
  std::set<std::string> given = NormalizeFlagNames(argc, argv, &storage, &args);
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(args.size()) - 1, args.data());
  if (rest.size() > 1) {
    std::fprintf(stderr, "%s: unexpected argument '%s' (flags look like --name=value)\n", program, rest[1]);
    std::exit(2);
  }
  return given;
}

void ChdirToBuildWorkingDirectory() {
  if (const char* dir = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(dir) != 0) {
      // Keep going in the runfiles directory; paths will be reported as not found.
    }
  }
}

}  // namespace ddlm
