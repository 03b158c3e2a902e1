// Writes a large corpus for benchmarks, deterministically from a seed: words drawn
// from a Zipf distribution (rank r with weight 1 / r^s) over a fixed vocabulary, in
// lines of 5 to 35 words, as train.txt, valid.txt and test.txt. Word r is spelled
// from syllables of r (frequent words are short, as in English), so the text has
// about 5 bytes per token. Not kept in the repository: a billion tokens is ~5 GB.
//
//   bazel run -c opt //common/benchmarks:zipf_corpus -- --out=/tmp/zipf-1b \
//       --train_tokens=1000000000
//
// Tokens here count each line's end (<eos>), as the tokenizer does. Prints what it
// wrote and how fast.

#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/base/cli.h"
#include "common/base/file_io.h"

ABSL_FLAG(std::string, out, "", "Directory to write train.txt, valid.txt and test.txt into (made if missing).");
ABSL_FLAG(int64_t, train_tokens, 100000000, "Tokens in train.txt (with each line's <eos>).");
ABSL_FLAG(int64_t, eval_tokens, 100000, "Tokens in each of valid.txt and test.txt.");
ABSL_FLAG(int64_t, vocabulary, 50000, "Words to draw from.");
ABSL_FLAG(double, zipf_s, 1.0, "Zipf exponent s: rank r has weight 1 / r^s.");
ABSL_FLAG(uint64_t, seed, 1, "The same seed and flags give the same bytes.");

namespace {

// SplitMix64: a fixed sequence on every platform (not std::distributions).
struct Rng {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
};

// Vose's alias method: one draw is one uniform and one comparison.
class AliasTable {
 public:
  explicit AliasTable(const std::vector<double>& weights) : probability_(weights.size()), alias_(weights.size()) {
    const size_t n = weights.size();
    double total = 0;
    for (double w : weights) total += w;
    std::vector<double> scaled(n);
    std::vector<size_t> small, large;
    for (size_t i = 0; i < n; ++i) {
      scaled[i] = weights[i] * static_cast<double>(n) / total;
      (scaled[i] < 1 ? small : large).push_back(i);
    }
    while (!small.empty() && !large.empty()) {
      const size_t s = small.back(), l = large.back();
      small.pop_back();
      probability_[s] = scaled[s];
      alias_[s] = l;
      scaled[l] -= 1 - scaled[s];
      if (scaled[l] < 1) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (size_t i : large) probability_[i] = 1;
    for (size_t i : small) probability_[i] = 1;
  }
  size_t Draw(Rng& rng) const {
    const uint64_t bits = rng.Next();
    const size_t column = static_cast<size_t>((bits >> 32) * probability_.size() >> 32);
    const double u = static_cast<double>(bits & 0xFFFFFFFFu) * 0x1.0p-32;
    return u < probability_[column] ? column : alias_[column];
  }

 private:
  std::vector<double> probability_;
  std::vector<size_t> alias_;
};

// Rank r as syllables: 20 consonants x 5 vowels, the least significant first.
std::string Spell(size_t r) {
  static constexpr char kConsonants[] = "bcdfghjklmnprstvwxyz";
  static constexpr char kVowels[] = "aeiou";
  std::string word;
  do {
    const size_t syllable = r % 100;
    word += kConsonants[syllable / 5];
    word += kVowels[syllable % 5];
    r /= 100;
  } while (r > 0);
  return word;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "zipf_corpus: %s\n", message.c_str());
  return 1;
}

// Writes `tokens` tokens of lines to `path`; false (and a message) if the disk refuses.
bool WriteSplit(const std::string& path, int64_t tokens, const AliasTable& table, const std::vector<std::string>& words,
                Rng& rng, int64_t* bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::fprintf(stderr, "zipf_corpus: cannot create %s\n", path.c_str());
    return false;
  }
  std::string buffer;
  buffer.reserve(1 << 22);
  int64_t written = 0;
  while (written < tokens) {
    // A line of n words is n + 1 tokens; the last line is cut to fit exactly.
    int64_t n = 5 + static_cast<int64_t>(rng.Next() % 31);
    n = std::min(n, tokens - written - 1);
    for (int64_t i = 0; i < n; ++i) {
      buffer += ' ';
      buffer += words[table.Draw(rng)];
    }
    buffer += " \n";
    written += n + 1;
    if (buffer.size() >= (1u << 22)) {
      if (std::fwrite(buffer.data(), 1, buffer.size(), f) != buffer.size()) break;
      *bytes += static_cast<int64_t>(buffer.size());
      buffer.clear();
    }
  }
  const bool ok = std::fwrite(buffer.data(), 1, buffer.size(), f) == buffer.size() && std::fclose(f) == 0;
  *bytes += static_cast<int64_t>(buffer.size());
  if (!ok) std::fprintf(stderr, "zipf_corpus: cannot write %s (disk full?)\n", path.c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  ddlm::ParseFlagsOrExit(argc, argv, "zipf_corpus", "zipf_corpus --out=DIR [--train_tokens=N]");
  ddlm::ChdirToBuildWorkingDirectory();
  const std::string out = absl::GetFlag(FLAGS_out);
  const int64_t train = absl::GetFlag(FLAGS_train_tokens), eval = absl::GetFlag(FLAGS_eval_tokens);
  const int64_t vocabulary = absl::GetFlag(FLAGS_vocabulary);
  const double s = absl::GetFlag(FLAGS_zipf_s);
  if (out.empty()) return Fail("--out DIR is required");
  if (train < 2 || eval < 2) return Fail("--train_tokens and --eval_tokens must be >= 2");
  if (vocabulary < 1 || vocabulary > 100000000) return Fail("--vocabulary must be in [1, 10^8]");
  if (!(s >= 0 && s <= 10)) return Fail("--zipf_s must be in [0, 10]");
  if (absl::Status made = ddlm::MakeDirectories(out); !made.ok()) return Fail(made.ToString());

  std::vector<double> weights(static_cast<size_t>(vocabulary));
  std::vector<std::string> words(static_cast<size_t>(vocabulary));
  for (size_t r = 0; r < weights.size(); ++r) {
    weights[r] = std::pow(static_cast<double>(r + 1), -s);
    words[r] = Spell(r);
  }
  const AliasTable table(weights);
  Rng rng{absl::GetFlag(FLAGS_seed)};
  const auto start = std::chrono::steady_clock::now();
  int64_t bytes = 0;
  for (auto [name, tokens] : {std::pair<const char*, int64_t>{"train", train}, {"valid", eval}, {"test", eval}}) {
    if (!WriteSplit(absl::StrCat(out, "/", name, ".txt"), tokens, table, words, rng, &bytes)) return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "zipf_corpus: %s: %lld train + 2 x %lld eval tokens, %lld words (s=%.2f), %.1f MB of text in %.1f s "
      "(%.0f MB/s)\n",
      out.c_str(), static_cast<long long>(train), static_cast<long long>(eval), static_cast<long long>(vocabulary), s,
      static_cast<double>(bytes) / 1e6, seconds, static_cast<double>(bytes) / 1e6 / seconds);
  return 0;
}
