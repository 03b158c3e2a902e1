#include "common/cli.h"

#include <unistd.h>

#include <cstdlib>

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

void ChdirToBuildWorkingDirectory() {
  if (const char* dir = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(dir) != 0) {
      // Keep going in the runfiles directory; paths will be reported as not found.
    }
  }
}

}  // namespace ddlm
