// End-to-end: the real ddlm_train and ddlm_generate binaries on the quickstart corpus,
// as the README runs them.

#include <signal.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "common/base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::ddlm::RunBinary;
using ::ddlm::Subprocess;
using ::testing::HasSubstr;

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

// Writes the same text as train/valid/test of a new corpus directory.
std::string MakeCorpus(const std::string& name, const std::string& text) {
  const std::string dir = TempDir() + "/" + name;
  ::mkdir(dir.c_str(), 0755);  // May already exist.
  for (const char* split : {"train.txt", "valid.txt", "test.txt"}) std::ofstream(dir + "/" + split) << text;
  return dir;
}

// ddlm_train's default token cache ($XDG_CACHE_HOME/ddlm/corpora) inside the test's own
// directory, for every run below.
const bool kCacheInTestDir = [] {
  ::setenv("XDG_CACHE_HOME", (TempDir() + "/xdg-cache").c_str(), 1);
  return true;
}();

// The figures of a run's output: every "valid ppl" and "test ppl".
std::vector<std::string> Perplexities(const std::string& output) {
  std::vector<std::string> found;
  for (const char* key : {"valid ppl ", "test ppl "}) {
    for (size_t at = output.find(key); at != std::string::npos; at = output.find(key, at + 1)) {
      std::istringstream in(output.substr(at + std::strlen(key)));
      std::string value;
      in >> value;
      found.push_back(std::string(key) + value);
    }
  }
  return found;
}

const char kTrain[] = "worker/ddlm_train";
const char kGenerate[] = "worker/ddlm_generate";

TEST(TrainBinaryTest, TrainsSavesAndGenerates) {
  const std::string model = TempDir() + "/quick.pt";
  std::string out;
  // Upstream's dashed spellings work, and flags override the config file.
  int code = RunBinary({kTrain, "--config=configs/quickstart.textproto", "--epochs=2", "--max-batches=30",
                        "--log-interval=10", "--emsize=32", "--nhid=32", "--save=" + model},
                       &out);
  ASSERT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("| epoch   1 |    10/  "));
  EXPECT_THAT(out, HasSubstr("ms/batch"));
  EXPECT_THAT(out, HasSubstr("tok/s"));
  EXPECT_THAT(out, HasSubstr("| end of epoch   2 |"));
  EXPECT_THAT(out, HasSubstr("| End of training | test loss"));
  // The torch wheel's LibTorch has MKL inside; Debian's (DDLM_LIBTORCH=/usr) calls OpenBLAS.
  EXPECT_THAT(out, ::testing::AnyOf(HasSubstr("BLAS: OpenBLAS"), HasSubstr("BLAS: MKL")));

  std::string a, b;
  ASSERT_EQ(RunBinary({kGenerate, "--checkpoint=" + model, "--words=40", "--outf=-", "--seed=3"}, &a), 0) << a;
  ASSERT_EQ(RunBinary({kGenerate, "--checkpoint=" + model, "--words=40", "--outf=-", "--seed=3"}, &b), 0) << b;
  a = WithoutGlogLines(a);
  EXPECT_EQ(a, WithoutGlogLines(b));
  // 40 words, 20 per line.
  EXPECT_EQ(std::count(a.begin(), a.end(), '\n'), 2) << a;

  // --outf writes the same words to a file (atomically), and a bad path is an error.
  const std::string outf = TempDir() + "/generated.txt";
  ASSERT_EQ(RunBinary({kGenerate, "--checkpoint=" + model, "--words=40", "--outf=" + outf, "--seed=3"}, &b), 0) << b;
  std::ifstream in(outf);
  std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(written, a);
  EXPECT_EQ(RunBinary({kGenerate, "--checkpoint=" + model, "--outf=" + TempDir() + "/no/such/dir/g.txt"}, &b), 1);
  EXPECT_THAT(b, HasSubstr("no/such/dir"));

  // With --data, the vocabulary must match the checkpoint's.
  ASSERT_EQ(
      RunBinary({kGenerate, "--checkpoint=" + model, "--data=configs/quickstart_data", "--words=5", "--outf=-"}, &a), 0)
      << a;
  const std::string other = MakeCorpus("other", "some other words entirely\n");
  EXPECT_EQ(RunBinary({kGenerate, "--checkpoint=" + model, "--data=" + other, "--outf=-"}, &a), 1);
  EXPECT_THAT(a, HasSubstr("another vocabulary"));
}

TEST(TrainBinaryTest, TrainsFromMappedTokenFilesExactlyAsFromTheCorpusInMemory) {
  ASSERT_TRUE(kCacheInTestDir);
  const std::vector<std::string> flags = {
      kTrain,      "--config=configs/quickstart.textproto", "--epochs=2", "--max_batches=20", "--emsize=16",
      "--nhid=16", "--save=" + TempDir() + "/mapped.pt"};
  auto run = [&](const std::string& cache) {
    std::vector<std::string> argv = flags;
    argv.push_back("--token_cache=" + cache);
    std::string out;
    EXPECT_EQ(RunBinary(argv, &out), 0) << out;
    return out;
  };
  const std::string in_memory = run("none");
  const std::string cache = TempDir() + "/token-cache";
  const std::string made = run(cache);
  const std::string found = run(cache);
  EXPECT_THAT(made, HasSubstr("| token files made in " + cache + "/"));
  EXPECT_THAT(found, HasSubstr("| token files found in " + cache + "/"));
  EXPECT_THAT(in_memory, ::testing::Not(HasSubstr("token files")));
  const std::vector<std::string> expected = Perplexities(in_memory);
  ASSERT_EQ(expected.size(), 3u) << in_memory;  // Two epochs' validation, one test.
  EXPECT_EQ(Perplexities(made), expected);
  EXPECT_EQ(Perplexities(found), expected);
  // The default cache ($XDG_CACHE_HOME/ddlm/corpora) is used when the flag is not given.
  std::string out;
  ASSERT_EQ(RunBinary(std::vector<std::string>(flags.begin(), flags.end()), &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(" in " + TempDir() + "/xdg-cache/ddlm/corpora/"));
}

TEST(TrainBinaryTest, RejectsASplitTooSmallForTheBatch) {
  const std::string tiny = MakeCorpus("tiny", "just five words here\n");
  std::string out;
  EXPECT_EQ(RunBinary({kTrain, "--data=" + tiny, "--epochs=1"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("the train split is too small for batch size 20"));
}

TEST(TrainBinaryTest, BadInputGetsAClearError) {
  std::string out;
  EXPECT_EQ(RunBinary({kTrain, "--config=configs/quickstart.textproto", "--bptt=0"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("data.bptt must be >= 1, got 0"));
  EXPECT_EQ(RunBinary({kTrain, "--model=CNN", "--data=configs/quickstart_data"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("unknown model type 'CNN'"));
  EXPECT_EQ(RunBinary({kTrain, "--data=" + TempDir() + "/nowhere", "--epochs=1"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("train.txt"));
  // A token cache that cannot be made: named, with the way around it.
  const std::string file = TempDir() + "/a-file";
  std::ofstream(file) << "not a directory";
  EXPECT_EQ(RunBinary({kTrain, "--config=configs/quickstart.textproto", "--token_cache=" + file + "/cache"}, &out), 1);
  EXPECT_THAT(out, HasSubstr(file + "/cache"));
  EXPECT_THAT(out, HasSubstr("--token_cache=none reads the corpus into memory"));

  const std::string bad = TempDir() + "/bad.pt";
  std::ofstream(bad) << "not a checkpoint at all, just some text";
  EXPECT_EQ(RunBinary({kGenerate, "--checkpoint=" + bad, "--outf=-"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("is corrupt or truncated"));
}

TEST(TrainBinaryTest, CtrlCStopsTrainingAndEvaluatesTheBestModel) {
  const std::string model = TempDir() + "/interrupted.pt";
  Subprocess train({kTrain, "--config=configs/quickstart.textproto", "--epochs=50", "--max_batches=5", "--emsize=16",
                    "--nhid=16", "--log_interval=1", "--save=" + model});
  // After the first epoch's model is saved, interrupt during the second epoch.
  ASSERT_TRUE(train.WaitForLine("| end of epoch   1 |")) << train.output();
  ASSERT_TRUE(train.WaitForLine("| epoch   2 |")) << train.output();
  train.Signal(SIGINT);
  EXPECT_EQ(train.Wait(), 0) << train.output();
  EXPECT_THAT(train.output(), HasSubstr("Exiting from training early"));
  EXPECT_THAT(train.output(), HasSubstr("| End of training | test loss"));
  EXPECT_THAT(train.output(), ::testing::Not(HasSubstr("| end of epoch  50 |")));
}

}  // namespace
}  // namespace ddlm
