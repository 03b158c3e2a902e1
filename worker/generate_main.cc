// ddlm_generate: samples text from a checkpoint, flag-compatible with
// word_language_model's generate.py (plus --top_k). The vocabulary travels inside the
// checkpoint, so --data is optional; when given, it must be the training vocabulary.
//
//   ddlm_generate --checkpoint model.pt --words 100 --temperature 0.8 --outf -

#include <cstdio>

#include <glog/logging.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/base/cli.h"
#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/base/file_io.h"
#include "common/training/checkpoint.h"
#include "common/training/generate.h"
#include "common/training/threading.h"

ABSL_FLAG(std::string, data, "", "Optional corpus directory; checked against the checkpoint's vocabulary.");
ABSL_FLAG(std::string, checkpoint, "./model.pt", "Model checkpoint to use.");
ABSL_FLAG(std::string, outf, "generated.txt", "Output file for generated text ('-' for stdout).");
ABSL_FLAG(int64_t, words, 1000, "Number of words to generate.");
ABSL_FLAG(uint64_t, seed, 1111, "Random seed.");
ABSL_FLAG(double, temperature, 1.0, "Temperature; higher will increase diversity (>= 1e-3).");
ABSL_FLAG(int64_t, top_k, 0, "Sample only from the k most likely words (0: all).");
ABSL_FLAG(int64_t, log_interval, 100, "Reporting interval.");
ABSL_FLAG(int32_t, threads, 0, "BLAS threads (0: one per core); LibTorch's own pool stays at 1.");

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "ddlm_generate: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  ddlm::ParseFlagsOrExit(argc, argv, "ddlm_generate",
                         "Generates text from a ddlm checkpoint (word_language_model's generate.py).");
  ddlm::ConfigureThreads(absl::GetFlag(FLAGS_threads));
  ddlm::LogBlasInfo();

  absl::StatusOr<ddlm::Checkpoint> checkpoint = ddlm::ReadCheckpointFile(absl::GetFlag(FLAGS_checkpoint));
  if (!checkpoint.ok()) return Fail(checkpoint.status());
  const ddlm::CheckpointHeader& header = checkpoint->header;
  ddlm::Dictionary vocabulary =
      ddlm::Dictionary::FromWords(std::vector<std::string>(header.vocabulary().begin(), header.vocabulary().end()));
  if (vocabulary.Fingerprint() != header.vocabulary_fingerprint()) {
    return Fail(absl::DataLossError("checkpoint's vocabulary does not match its fingerprint"));
  }
  if (!absl::GetFlag(FLAGS_data).empty()) {
    absl::StatusOr<ddlm::Corpus> corpus = ddlm::LoadCorpus(absl::GetFlag(FLAGS_data));
    if (!corpus.ok()) return Fail(corpus.status());
    absl::Status same = ddlm::CheckCompatible(*checkpoint, corpus->dictionary.Fingerprint(), corpus->dictionary.size(),
                                              header.spec().model());
    if (!same.ok()) return Fail(same);
  }
  absl::StatusOr<std::shared_ptr<ddlm::LanguageModelImpl>> model =
      ddlm::BuildModel(header.spec().model(), vocabulary.size());
  if (!model.ok()) return Fail(model.status());
  absl::Status restored = ddlm::RestoreModel(*checkpoint, **model);
  if (!restored.ok()) return Fail(restored);

  ddlm::GenerateOptions options;
  options.words = absl::GetFlag(FLAGS_words);
  options.temperature = absl::GetFlag(FLAGS_temperature);
  options.top_k = absl::GetFlag(FLAGS_top_k);
  options.seed = absl::GetFlag(FLAGS_seed);
  absl::StatusOr<std::vector<int64_t>> ids = ddlm::GenerateIds(**model, options);
  if (!ids.ok()) return Fail(ids.status());

  const std::string outf = absl::GetFlag(FLAGS_outf);
  const int64_t log_interval = std::max<int64_t>(1, absl::GetFlag(FLAGS_log_interval));
  std::string text;
  for (size_t i = 0; i < ids->size(); ++i) {
    text += vocabulary.Word((*ids)[i]);
    text += i % 20 == 19 ? '\n' : ' ';
    if (outf != "-" && (i + 1) % log_interval == 0) {
      std::printf("| Generated %zu/%zu words\n", i + 1, ids->size());
    }
  }
  if (outf == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (std::fflush(stdout) != 0) return Fail(absl::DataLossError("writing to stdout failed"));
  } else {
    // Atomic: a failed run never leaves a torn file in place of an earlier one.
    absl::Status written = ddlm::WriteFileAtomically(outf, text);
    if (!written.ok()) return Fail(written);
  }
  return 0;
}
