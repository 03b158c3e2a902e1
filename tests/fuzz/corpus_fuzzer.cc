// Fuzz target: the corpus reader's tokenizer (lines, words, <eos>, UTF-8 checks).
// Every id it appends must name a word of the dictionary.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/base/corpus.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  ddlm::Dictionary dictionary;
  std::vector<int64_t> ids;
  if (!ddlm::TokenizeText(text, "fuzz.txt", &dictionary, &ids).ok()) return 0;
  for (int64_t id : ids) {
    if (id < 0 || id >= dictionary.size()) std::abort();
  }
  return 0;
}
