#include "common/testing/quickstart_corpus.h"

#include <utility>

#include "gtest/gtest.h"

namespace ddlm {

const Corpus& QuickstartCorpus() {
  static const Corpus* corpus = [] {
    absl::StatusOr<Corpus> c = LoadCorpus("configs/quickstart_data");
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? new Corpus(std::move(*c)) : new Corpus();
  }();
  return *corpus;
}

}  // namespace ddlm
