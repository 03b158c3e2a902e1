// The regression run of a fuzz target, for every build (no libFuzzer needed): each
// file of the target's seed corpus (the directories given as arguments), then a fixed
// number of mutations of each (bit flips, cut, grown, spliced with another seed), from
// a fixed random seed so that a failure replays. A crash, a sanitizer report or a
// target's own abort() fails the test. The real fuzzing is `--config=fuzz` (libFuzzer,
// clang), see tests/fuzz/BUILD.

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "common/base/file_io.h"
#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> g_corpus_dirs;
constexpr int kMutationsPerSeed = 300;

int RunOne(const std::string& input) {
  return LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

TEST(FuzzRegression, SeedsAndTheirMutationsRunClean) {
  std::vector<std::string> seeds;
  for (const std::string& dir : g_corpus_dirs) {
    for (const std::string& name : ddlm::ListDirectory(dir)) {
      absl::StatusOr<std::string> seed = ddlm::ReadFile(dir + "/" + name);
      ASSERT_TRUE(seed.ok()) << seed.status();
      seeds.push_back(*seed);
    }
  }
  ASSERT_FALSE(seeds.empty()) << "no seed corpus";
  std::mt19937 rng(20261201);
  int runs = 0;
  for (const std::string& seed : seeds) {
    EXPECT_EQ(RunOne(seed), 0);
    ++runs;
    for (int m = 0; m < kMutationsPerSeed; ++m) {
      std::string input = seed;
      switch (rng() % 5) {
        case 0:  // Flip a few bits.
          for (int k = 0; k < 1 + static_cast<int>(rng() % 4) && !input.empty(); ++k) {
            input[rng() % input.size()] ^= static_cast<char>(1u << (rng() % 8));
          }
          break;
        case 1:  // Cut short.
          input.resize(input.empty() ? 0 : rng() % input.size());
          break;
        case 2:  // Overwrite a byte with an extreme value.
          if (!input.empty()) input[rng() % input.size()] = static_cast<char>((rng() % 2) ? 0xff : 0x00);
          break;
        case 3:  // Insert random bytes.
          input.insert(input.empty() ? 0 : rng() % input.size(), std::string(1 + rng() % 16, static_cast<char>(rng())));
          break;
        case 4: {  // Splice with another seed.
          const std::string& other = seeds[rng() % seeds.size()];
          input = input.substr(0, input.empty() ? 0 : rng() % input.size()) +
                  other.substr(other.empty() ? 0 : rng() % other.size());
          break;
        }
      }
      // The first byte of a few targets selects what to do: keep it from the seed.
      if (!seed.empty() && !input.empty()) input[0] = seed[0];
      EXPECT_EQ(RunOne(input), 0);
      ++runs;
    }
  }
  std::printf("%zu seeds, %d inputs run\n", seeds.size(), runs);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) g_corpus_dirs.push_back(argv[i]);
  return RUN_ALL_TESTS();
}
