// Writes the quickstart corpus (common/base/synthetic_corpus.h) to a directory:
//   bazel run //common/base:make_quickstart_corpus -- configs/quickstart_data
// The committed copy in configs/quickstart_data is checked byte-for-byte against this
// generator by //common/base:synthetic_corpus_test.

#include <cstdio>
#include <string>

#include "common/base/cli.h"
#include "common/base/file_io.h"
#include "common/base/synthetic_corpus.h"

int main(int argc, char** argv) {
  ddlm::ChdirToBuildWorkingDirectory();
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  ddlm::SyntheticCorpus corpus = ddlm::MakeQuickstartCorpus();
  for (auto [name, text] : {std::make_pair("train.txt", &corpus.train), std::make_pair("valid.txt", &corpus.valid),
                            std::make_pair("test.txt", &corpus.test)}) {
    absl::Status s = ddlm::WriteFileAtomically(dir + "/" + name, *text);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
    std::printf("wrote %s/%s (%zu bytes)\n", dir.c_str(), name, text->size());
  }
  return 0;
}
