// How fast a corpus is tokenized, and what memory it takes: either streamed to token
// files on disk (common/base/token_corpus.h: two passes, memory bounded by the
// vocabulary) or read whole into memory as jobs read it today (LoadCorpus). Run each
// mode in its own process so that each peak RSS is its own:
//
//   bazel run -c opt //common/benchmarks:tokenize_throughput -- --corpus=DIR --mode=stream
//   bazel run -c opt //common/benchmarks:tokenize_throughput -- --corpus=DIR --mode=load
//
// Prints one line: mode, text MB, seconds, MB/s of text (stream: over both passes, and
// per pass), tokens, vocabulary, peak RSS, and (stream) the token files' bytes.

#include <sys/resource.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/base/cli.h"
#include "common/base/corpus.h"
#include "common/base/file_io.h"
#include "common/base/token_corpus.h"

ABSL_FLAG(std::string, corpus, "", "Directory with train.txt, valid.txt and test.txt.");
ABSL_FLAG(std::string, mode, "stream", "stream (token files) or load (in memory, as LoadCorpus).");
ABSL_FLAG(std::string, out, "", "Where stream writes its token files (default: a fresh directory under /tmp).");
ABSL_FLAG(int64_t, chunk_kb, 4096, "Text read at a time by stream, in KiB.");

namespace {

double PeakRssMb() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux.
}

int64_t FileBytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "tokenize_throughput: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  ddlm::ParseFlagsOrExit(argc, argv, "tokenize_throughput", "tokenize_throughput --corpus=DIR [--mode=stream|load]");
  ddlm::ChdirToBuildWorkingDirectory();
  const std::string corpus = absl::GetFlag(FLAGS_corpus);
  if (corpus.empty()) return Fail("--corpus DIR is required");
  int64_t text = 0;
  for (const char* split : {"train", "valid", "test"}) text += FileBytes(absl::StrCat(corpus, "/", split, ".txt"));
  const double text_mb = static_cast<double>(text) / 1e6;
  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "load") {
    absl::StatusOr<ddlm::Corpus> loaded = ddlm::LoadCorpus(corpus);
    if (!loaded.ok()) return Fail(loaded.status().ToString());
    const double s = seconds();
    const size_t tokens = loaded->train.size() + loaded->valid.size() + loaded->test.size();
    std::printf("mode=load text_mb=%.1f seconds=%.2f mb_per_s=%.1f tokens=%zu vocabulary=%lld peak_rss_mb=%.0f\n",
                text_mb, s, text_mb / s, tokens, static_cast<long long>(loaded->dictionary.size()), PeakRssMb());
    return 0;
  }
  if (mode != "stream") return Fail("--mode must be stream or load, got '" + mode + "'");
  std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) out = absl::StrCat("/tmp/tokenize_throughput.", ::getpid());
  ddlm::TokenizeOptions options;
  options.chunk_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_chunk_kb)) << 10;
  absl::StatusOr<ddlm::TokenCorpusSummary> summary = ddlm::BuildTokenCorpus(corpus, out, options);
  if (!summary.ok()) return Fail(summary.status().ToString());
  const double s = seconds();
  int64_t files = 0;
  for (const char* name : {"train.tok", "valid.tok", "test.tok", "vocab.txt"}) files += FileBytes(out + "/" + name);
  std::printf(
      "mode=stream text_mb=%.1f seconds=%.2f mb_per_s=%.1f (each pass %.1f) tokens=%lld vocabulary=%lld "
      "peak_rss_mb=%.0f token_files_mb=%.1f\n",
      text_mb, s, text_mb / s, 2 * text_mb / s, static_cast<long long>(summary->train + summary->valid + summary->test),
      static_cast<long long>(summary->vocabulary_size), PeakRssMb(), static_cast<double>(files) / 1e6);
  if (absl::GetFlag(FLAGS_out).empty()) (void)ddlm::RemoveTree(out);
  return 0;
}
