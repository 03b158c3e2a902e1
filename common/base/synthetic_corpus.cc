#include "common/base/synthetic_corpus.h"

#include <vector>

namespace ddlm {
namespace {

// SplitMix64: tiny, fast and identical on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
  bool Chance(int percent) { return Below(100) < static_cast<size_t>(percent); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Below(v.size())];
  }
  // Zipf-like: earlier entries are more likely (weight 1 / (rank + 2)).
  template <typename T>
  const T& PickSkewed(const std::vector<T>& v) {
    double total = 0;
    for (size_t i = 0; i < v.size(); ++i) total += 1.0 / (i + 2);
    double x = (Next() >> 11) * (1.0 / 9007199254740992.0) * total;
    for (size_t i = 0; i < v.size(); ++i) {
      x -= 1.0 / (i + 2);
      if (x <= 0) return v[i];
    }
    return v.back();
  }

 private:
  uint64_t state_;
};

struct Topic {
  std::string title;
  std::vector<std::string> nouns;
  std::vector<std::string> verbs;  // Transitive, past tense.
  std::vector<std::string> adjectives;
  std::vector<std::string> places;
};

const std::vector<Topic>& Topics() {
  static const auto* topics = new std::vector<Topic>{
      {"River Valley",
       {"river", "valley", "bridge", "mill", "boat", "village", "farmer", "harvest", "flood", "bank"},
       {"crossed", "flooded", "built", "repaired", "followed", "drained", "reached", "divided"},
       {"wide", "shallow", "northern", "ancient", "fertile", "muddy", "quiet"},
       {"the lower valley", "the old mill", "the eastern bank", "the market town"}},
      {"Railway Company",
       {"railway", "station", "engine", "line", "train", "company", "track", "director", "tunnel", "passenger"},
       {"opened", "extended", "operated", "purchased", "closed", "electrified", "served", "carried"},
       {"new", "main", "suburban", "express", "narrow", "busy", "private"},
       {"the central station", "the coast", "the capital", "the junction"}},
      {"Symphony Orchestra",
       {"orchestra", "symphony", "composer", "concert", "conductor", "score", "audience", "season", "opera", "choir"},
       {"performed", "composed", "recorded", "conducted", "premiered", "revised", "praised", "commissioned"},
       {"famous", "early", "romantic", "complete", "lengthy", "popular", "critical"},
       {"the concert hall", "the festival", "the royal theatre", "the studio"}},
      {"Naval Battle",
       {"ship", "fleet", "admiral", "battle", "crew", "harbour", "gun", "squadron", "captain", "convoy"},
       {"attacked", "sank", "escorted", "captured", "damaged", "defended", "blockaded", "commanded"},
       {"heavy", "british", "enemy", "damaged", "armoured", "fast", "large"},
       {"the harbour", "the channel", "the open sea", "the northern coast"}},
      {"Football Club",
       {"club", "season", "player", "match", "league", "goal", "manager", "stadium", "cup", "team"},
       {"won", "lost", "signed", "scored", "joined", "promoted", "relegated", "played"},
       {"young", "professional", "domestic", "final", "regular", "successful", "local"},
       {"the home ground", "the final", "the first division", "the capital"}},
      {"Tropical Storm",
       {"storm", "hurricane", "rainfall", "wind", "coast", "damage", "island", "forecast", "depression", "wave"},
       {"struck", "weakened", "intensified", "produced", "affected", "caused", "crossed", "destroyed"},
       {"tropical", "strong", "heavy", "maximum", "coastal", "severe", "minimal"},
       {"the island", "the gulf", "the eastern coast", "the open ocean"}},
      {"Medieval Castle",
       {"castle", "king", "wall", "siege", "tower", "lord", "army", "keep", "garrison", "estate"},
       {"besieged", "fortified", "granted", "inherited", "rebuilt", "surrendered", "held", "ruled"},
       {"royal", "stone", "medieval", "outer", "noble", "ruined", "strong"},
       {"the border", "the hill", "the old town", "the river crossing"}},
      {"Space Probe",
       {"probe", "planet", "orbit", "mission", "telescope", "moon", "instrument", "launch", "signal", "surface"},
       {"observed", "launched", "measured", "detected", "photographed", "reached", "studied", "transmitted"},
       {"distant", "outer", "scientific", "first", "orbital", "icy", "bright"},
       {"the outer system", "the launch site", "the control centre", "the far side"}},
  };
  return *topics;
}

const std::vector<std::string> kDeterminers = {"the", "the", "the", "a", "its", "this", "one"};
const std::vector<std::string> kConnectives = {"however",  "later",          "in addition", "as a result",
                                               "at first", "during the war", "by then"};
const std::vector<std::string> kPrepositions = {"in", "near", "at", "from", "towards", "across"};
const std::vector<std::string> kSubjects = {"he", "she", "they", "it"};
const std::vector<std::string> kMonths = {"january", "march", "may", "july", "september", "november"};

class Writer {
 public:
  explicit Writer(uint64_t seed) : rng_(seed) {}

  std::string Articles(int count) {
    std::string out;
    for (int i = 0; i < count; ++i) Article(&out);
    return out;
  }

 private:
  std::string NounPhrase(const Topic& t) {
    std::string np = rng_.Pick(kDeterminers);
    if (rng_.Chance(45)) np += " " + rng_.PickSkewed(t.adjectives);
    np += " " + rng_.PickSkewed(t.nouns);
    return np;
  }

  std::string Sentence(const Topic& t) {
    std::string s;
    if (rng_.Chance(20)) s += rng_.Pick(kConnectives) + " , ";
    s += rng_.Chance(30) ? rng_.Pick(kSubjects) : NounPhrase(t);
    s += " " + rng_.PickSkewed(t.verbs) + " " + NounPhrase(t);
    if (rng_.Chance(50)) s += " " + rng_.Pick(kPrepositions) + " " + rng_.Pick(t.places);
    if (rng_.Chance(30)) {
      s += " in " + rng_.Pick(kMonths) + " " + std::to_string(1800 + rng_.Below(220));
    }
    if (rng_.Chance(25)) s += " , and " + rng_.PickSkewed(t.verbs) + " " + NounPhrase(t);
    if (rng_.Chance(10)) s += " with @-@ " + rng_.Pick(t.adjectives) + " " + rng_.Pick(t.nouns);
    return s + " .";
  }

  void Article(std::string* out) {
    const Topic& t = rng_.Pick(Topics());
    *out += " \n = " + t.title + " = \n \n";
    const int paragraphs = 2 + static_cast<int>(rng_.Below(3));
    for (int p = 0; p < paragraphs; ++p) {
      if (p > 0 && rng_.Chance(40)) *out += " \n = = " + rng_.Pick(t.nouns) + " = = \n \n";
      *out += " ";
      const int sentences = 2 + static_cast<int>(rng_.Below(5));
      for (int s = 0; s < sentences; ++s) *out += Sentence(t) + " ";
      *out += "\n";
    }
  }

  Rng rng_;
};

}  // namespace

SyntheticCorpus MakeSyntheticCorpus(uint64_t seed, int train_articles, int valid_articles, int test_articles) {
  SyntheticCorpus c;
  c.train = Writer(seed).Articles(train_articles);
  c.valid = Writer(seed + 1).Articles(valid_articles);
  c.test = Writer(seed + 2).Articles(test_articles);
  return c;
}

SyntheticCorpus MakeQuickstartCorpus() { return MakeSyntheticCorpus(2024, 600, 60, 60); }

}  // namespace ddlm
