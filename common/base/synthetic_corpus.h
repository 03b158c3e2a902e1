#ifndef DDLM_COMMON_BASE_SYNTHETIC_CORPUS_H_
#define DDLM_COMMON_BASE_SYNTHETIC_CORPUS_H_

// A small English-like corpus that ddlm generates itself, deterministically, for the
// quickstart and the tests (so neither needs a download). It is laid out like
// WikiText-2 (" = Title = " headings, blank lines, " word word . \n" lines) and has
// real structure for a model to learn: each article has a topic that selects its
// nouns, verbs and adjectives, and sentences follow a small grammar (determiner /
// adjective / noun phrases, verbs with objects and prepositional phrases, numbers).

#include <cstdint>
#include <string>

namespace ddlm {

struct SyntheticCorpus {
  std::string train;
  std::string valid;
  std::string test;
};

// Articles for each split; the same `seed` always yields the same bytes (the generator
// is a fixed 64-bit PCG-style sequence, not the platform's std::distributions).
SyntheticCorpus MakeSyntheticCorpus(uint64_t seed, int train_articles, int valid_articles, int test_articles);

// The quickstart corpus shipped in configs/quickstart_data (about 560 KB).
SyntheticCorpus MakeQuickstartCorpus();

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_SYNTHETIC_CORPUS_H_
