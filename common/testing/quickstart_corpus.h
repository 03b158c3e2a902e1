#ifndef DDLM_COMMON_TESTING_QUICKSTART_CORPUS_H_
#define DDLM_COMMON_TESTING_QUICKSTART_CORPUS_H_

// Test-only: the repository's own quickstart corpus (configs/quickstart_data, generated
// by ddlm, never WikiText-2), loaded once per test binary. A test that uses it lists
// "//configs:quickstart_data" in its data.

#include "common/base/corpus.h"

namespace ddlm {

// Fails the calling test (and returns an empty corpus) if the files cannot be read.
const Corpus& QuickstartCorpus();

}  // namespace ddlm

#endif  // DDLM_COMMON_TESTING_QUICKSTART_CORPUS_H_
