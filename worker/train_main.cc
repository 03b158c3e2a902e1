// ddlm_train: single-process training, flag-compatible with word_language_model's
// main.py. Trains, validates each epoch, keeps the best model in --save, anneals the
// learning rate, and reports test perplexity of the best model. Ctrl-C stops training
// and still evaluates the best saved model.
//
//   ddlm_train --config configs/quickstart.textproto
//   ddlm_train --data ../shared/data/wikitext-2 --epochs 6 --lr 20
//   ddlm_train --config configs/lstm.textproto --device cuda:0 --precision bf16

#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>

#include <glog/logging.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/base/cli.h"
#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/base/token_cache.h"
#include "common/training/batching.h"
#include "common/training/device.h"
#include "common/training/threading.h"
#include "common/training/trainer.h"
#include "worker/epoch_loop.h"

ABSL_FLAG(std::string, config, "", "Text-format JobSpec file; flags given on the command line override it.");
ABSL_FLAG(std::string, data, "./data/wikitext-2", "Location of the data corpus (train.txt, valid.txt, test.txt).");
ABSL_FLAG(std::string, model, "LSTM", "Type of network (RNN_TANH, RNN_RELU, LSTM, GRU, Transformer).");
ABSL_FLAG(int32_t, emsize, 200, "Size of word embeddings.");
ABSL_FLAG(int32_t, nhid, 200, "Number of hidden units per layer.");
ABSL_FLAG(int32_t, nlayers, 2, "Number of layers.");
ABSL_FLAG(double, lr, 20, "Initial learning rate.");
ABSL_FLAG(double, clip, 0.25, "Gradient clipping (0: off).");
ABSL_FLAG(int32_t, epochs, 40, "Upper epoch limit.");
ABSL_FLAG(int32_t, batch_size, 20, "Batch size.");
ABSL_FLAG(int32_t, bptt, 35, "Sequence length.");
ABSL_FLAG(double, dropout, 0.2, "Dropout applied to layers (0 = no dropout).");
ABSL_FLAG(bool, tied, false, "Tie the word embedding and softmax weights.");
ABSL_FLAG(uint64_t, seed, 1111, "Random seed.");
ABSL_FLAG(int32_t, log_interval, 200, "Report interval (batches).");
ABSL_FLAG(std::string, save, "model.pt", "Path to save the final (best) model.");
ABSL_FLAG(int32_t, nhead, 2, "Number of heads in the Transformer's attention.");
ABSL_FLAG(bool, dry_run, false, "Verify the code and the model: one batch per epoch.");
ABSL_FLAG(bool, use_optimizer, false, "Use AdamW instead of plain SGD.");
ABSL_FLAG(int32_t, threads, 0, "Threads for the matrix products and LibTorch's pool (0: one per core).");
ABSL_FLAG(int64_t, max_batches, 0, "Stop each epoch after this many batches (0: whole epoch).");
ABSL_FLAG(std::string, device, "cpu", "cpu, or cuda:N (a --config=cuda build; README, \"Training on GPUs\").");
ABSL_FLAG(std::string, precision, "fp32", "fp32, or bf16 (autocast; float32 master weights).");
ABSL_FLAG(std::string, token_cache, "",
          "Where the corpus is tokenized once, to token files that later runs reuse and training "
          "reads memory-mapped, so a corpus larger than memory trains (default: "
          "$XDG_CACHE_HOME/ddlm/corpora, else ~/.cache/ddlm/corpora); 'none': read it whole into memory.");

namespace {

std::atomic<bool> g_stop{false};

void OnSigint(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);  // A second Ctrl-C ends the process at once.
}

// Builds the JobSpec: the --config file (if any), then every flag given explicitly.
absl::StatusOr<ddlm::JobSpec> BuildSpec(const std::set<std::string>& given) {
  ddlm::JobSpec spec;
  const std::string config = absl::GetFlag(FLAGS_config);
  if (!config.empty()) {
    absl::StatusOr<ddlm::JobSpec> loaded = ddlm::LoadJobSpec(config);
    if (!loaded.ok()) return loaded.status();
    spec = *loaded;
  }
  auto use = [&](const char* name) { return config.empty() || given.count(name) > 0; };
  if (use("data")) spec.mutable_data()->set_path(absl::GetFlag(FLAGS_data));
  if (use("model")) {
    absl::StatusOr<ddlm::ModelType> type = ddlm::ParseModelType(absl::GetFlag(FLAGS_model));
    if (!type.ok()) return absl::InvalidArgumentError(absl::StrCat("--model: ", type.status().message()));
    spec.mutable_model()->set_type(*type);
  }
  if (use("emsize")) spec.mutable_model()->set_emsize(absl::GetFlag(FLAGS_emsize));
  if (use("nhid")) spec.mutable_model()->set_nhid(absl::GetFlag(FLAGS_nhid));
  if (use("nlayers")) spec.mutable_model()->set_nlayers(absl::GetFlag(FLAGS_nlayers));
  if (use("dropout")) spec.mutable_model()->set_dropout(static_cast<float>(absl::GetFlag(FLAGS_dropout)));
  if (use("tied")) spec.mutable_model()->set_tied(absl::GetFlag(FLAGS_tied));
  if (use("nhead")) spec.mutable_model()->set_nhead(absl::GetFlag(FLAGS_nhead));
  if (use("lr")) spec.mutable_optimizer()->set_lr(absl::GetFlag(FLAGS_lr));
  if (use("clip")) spec.mutable_optimizer()->set_clip(absl::GetFlag(FLAGS_clip));
  if (use("use_optimizer")) {
    spec.mutable_optimizer()->set_type(absl::GetFlag(FLAGS_use_optimizer) ? ddlm::ADAMW : ddlm::SGD);
  }
  if (use("epochs")) spec.mutable_schedule()->set_epochs(absl::GetFlag(FLAGS_epochs));
  if (use("batch_size")) spec.mutable_data()->set_batch_size(absl::GetFlag(FLAGS_batch_size));
  if (use("bptt")) spec.mutable_data()->set_bptt(absl::GetFlag(FLAGS_bptt));
  if (use("seed")) spec.mutable_schedule()->set_seed(absl::GetFlag(FLAGS_seed));
  if (use("log_interval")) spec.mutable_schedule()->set_log_interval(absl::GetFlag(FLAGS_log_interval));
  if (use("dry_run")) spec.mutable_schedule()->set_dry_run(absl::GetFlag(FLAGS_dry_run));
  if (use("threads")) spec.mutable_schedule()->set_threads(absl::GetFlag(FLAGS_threads));
  if (use("max_batches")) spec.mutable_schedule()->set_max_batches_per_epoch(absl::GetFlag(FLAGS_max_batches));
  if (use("save")) spec.mutable_checkpoint()->set_path(absl::GetFlag(FLAGS_save));
  if (use("precision")) {
    const std::string p = absl::AsciiStrToUpper(absl::GetFlag(FLAGS_precision));
    ddlm::Precision precision;
    if (!ddlm::Precision_Parse(p, &precision) || precision == ddlm::PRECISION_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          absl::StrCat("--precision must be fp32 or bf16, got '", absl::GetFlag(FLAGS_precision), "'"));
    }
    spec.mutable_schedule()->set_precision(precision);
  }
  ddlm::ApplyDefaults(&spec);
  absl::Status valid = ddlm::ValidateJobSpec(spec);
  if (!valid.ok()) return valid;
  return spec;
}

// --token_cache, or its default; empty for 'none' (or no home directory).
std::string TokenCacheDir() {
  const std::string flag = absl::GetFlag(FLAGS_token_cache);
  if (flag == "none") return "";
  if (!flag.empty()) return flag;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
    return absl::StrCat(xdg, "/ddlm/corpora");
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
    return absl::StrCat(home, "/.cache/ddlm/corpora");
  }
  return "";
}

void PrintRule(char c) { std::printf("%s\n", std::string(89, c).c_str()); }

int Run(const ddlm::JobSpec& spec, const torch::Device& device) {
  const int threads = ddlm::ConfigureThreads(spec.schedule().threads());
  ddlm::LogBlasInfo();
  LOG(INFO) << "threads: " << threads << ", device " << ddlm::DescribeDevice(device);

  // The corpus: tokenized once into the token cache and mapped, or read whole.
  ddlm::Dictionary dictionary;
  torch::Tensor train, valid, test;
  std::shared_ptr<const ddlm::TokenCorpus> mapped;  // Keeps the token files mapped.
  const std::string cache_dir = TokenCacheDir();
  if (!cache_dir.empty()) {
    ddlm::TokenCache cache(cache_dir);
    absl::StatusOr<ddlm::TokenCache::Entry> entry = cache.Get(spec.data().path());
    if (!entry.ok()) {
      // A corpus at fault is named as it is; the cache's own trouble (an unwritable or
      // full directory) says how to go without it.
      const absl::StatusCode code = entry.status().code();
      const bool corpus = code == absl::StatusCode::kNotFound || code == absl::StatusCode::kInvalidArgument ||
                          code == absl::StatusCode::kFailedPrecondition;
      std::fprintf(stderr, "ddlm_train: %s%s\n", std::string(entry.status().message()).c_str(),
                   corpus ? ""
                          : " (--token_cache=DIR puts the token files elsewhere; --token_cache=none reads the "
                            "corpus into memory)");
      return 1;
    }
    mapped = entry->corpus;
    dictionary = mapped->dictionary;
    auto view = [&](const std::unique_ptr<ddlm::TokenFile>& file, int64_t batch) {
      return ddlm::BatchifyView(ddlm::MappedIds(std::shared_ptr<const ddlm::TokenFile>(mapped, file.get())), batch);
    };
    train = view(mapped->train, spec.data().batch_size());
    valid = view(mapped->valid, spec.data().eval_batch_size());
    test = view(mapped->test, spec.data().eval_batch_size());
    std::printf("| corpus %s | vocabulary %lld | train %lld valid %lld test %lld tokens | token files %s in %s\n",
                spec.data().path().c_str(), static_cast<long long>(dictionary.size()),
                static_cast<long long>(mapped->train->tokens()), static_cast<long long>(mapped->valid->tokens()),
                static_cast<long long>(mapped->test->tokens()), entry->built ? "made" : "found", entry->path.c_str());
  } else {
    absl::StatusOr<ddlm::Corpus> corpus = ddlm::LoadCorpus(spec.data().path());
    if (!corpus.ok()) {
      std::fprintf(stderr, "ddlm_train: %s\n", std::string(corpus.status().message()).c_str());
      return 1;
    }
    std::printf("| corpus %s | vocabulary %lld | train %zu valid %zu test %zu tokens\n", spec.data().path().c_str(),
                static_cast<long long>(corpus->dictionary.size()), corpus->train.size(), corpus->valid.size(),
                corpus->test.size());
    dictionary = std::move(corpus->dictionary);
    train = ddlm::Batchify(corpus->train, spec.data().batch_size());
    valid = ddlm::Batchify(corpus->valid, spec.data().eval_batch_size());
    test = ddlm::Batchify(corpus->test, spec.data().eval_batch_size());
  }
  // Pages of the mapped files read so far are let go now and then: resident memory
  // stays bounded however large the corpus.
  auto release_pages = [&] {
    if (mapped == nullptr) return;
    for (const auto* file : {&mapped->train, &mapped->valid, &mapped->test}) (*file)->ReleasePages();
  };
  for (auto [name, split] :
       {std::make_pair("train", &train), std::make_pair("valid", &valid), std::make_pair("test", &test)}) {
    absl::Status enough = ddlm::CheckHasBatches(*split, name);
    if (!enough.ok()) {
      std::fprintf(stderr, "ddlm_train: %s\n", std::string(enough.message()).c_str());
      return 1;
    }
  }

  absl::StatusOr<std::unique_ptr<ddlm::Trainer>> made = ddlm::Trainer::Create(spec, dictionary, device);
  if (!made.ok()) {
    std::fprintf(stderr, "ddlm_train: %s\n", std::string(made.status().message()).c_str());
    return 1;
  }
  ddlm::Trainer& trainer = **made;
  std::printf("| model %s | %lld parameters | optimizer %s | %s | %s\n",
              ddlm::ModelType_Name(spec.model().type()).c_str(), static_cast<long long>(trainer.num_parameters()),
              ddlm::OptimizerType_Name(spec.optimizer().type()).c_str(), ddlm::DescribeDevice(device).c_str(),
              ddlm::Precision_Name(spec.schedule().precision()).c_str());
  trainer.set_interval_callback([&](const ddlm::IntervalReport& r) {
    release_pages();
    std::printf(
        "| epoch %3d | %5lld/%5lld batches | lr %02.2f | ms/batch %5.2f | loss %5.2f | ppl %8.2f | tok/s %7.0f\n",
        r.epoch, static_cast<long long>(r.batch), static_cast<long long>(r.num_batches), r.lr, r.ms_per_batch, r.loss,
        std::exp(r.loss), r.tokens_per_second);
    std::fflush(stdout);
  });

  // Each epoch's end: print it; a best model is saved, as upstream's main.py does.
  const std::string& save = spec.checkpoint().path();
  ddlm::EpochLoopOptions loop_options;
  loop_options.eval_batches = spec.schedule().dry_run() ? 1 : 0;
  loop_options.stop = &g_stop;
  loop_options.keep_best = false;  // Saved to `save`, and read back from it for the test.
  bool saved = false;
  loop_options.on_epoch_end = [&](const ddlm::EpochEnd& end) -> absl::Status {
    const double val_loss = end.decision.loss();
    release_pages();
    PrintRule('-');
    std::printf("| end of epoch %3d | time: %5.2fs | valid loss %5.2f | valid ppl %8.2f | train tok/s %7.0f\n",
                end.epoch, end.summary.seconds + end.eval_seconds, val_loss, std::exp(val_loss),
                end.summary.seconds > 0 ? end.summary.tokens / end.summary.seconds : 0.0);
    PrintRule('-');
    std::fflush(stdout);
    if (!end.decision.best()) return absl::OkStatus();
    absl::StatusOr<ddlm::Checkpoint> checkpoint = trainer.MakeCheckpoint();
    absl::Status written = checkpoint.ok() ? ddlm::WriteCheckpointFile(save, *checkpoint) : checkpoint.status();
    if (!written.ok()) {
      return absl::Status(written.code(), absl::StrCat("cannot save the best model: ", written.message()));
    }
    saved = true;
    return absl::OkStatus();
  };
  ddlm::LocalValidationArbiter arbiter(&trainer);
  ddlm::EpochLoop loop(&trainer, &arbiter, loop_options);
  std::signal(SIGINT, OnSigint);
  absl::StatusOr<bool> finished = loop.Train(train, valid);
  std::signal(SIGINT, SIG_DFL);
  if (!finished.ok()) {
    std::fprintf(stderr, "ddlm_train: %s\n", std::string(finished.status().message()).c_str());
    return 1;
  }
  if (!*finished) {
    PrintRule('-');
    std::printf("Exiting from training early\n");
  }
  if (!saved) {
    std::printf("No epoch finished: no model was saved, skipping the test evaluation\n");
    return 0;
  }
  absl::StatusOr<ddlm::Checkpoint> best = ddlm::ReadCheckpointFile(save);
  absl::Status loaded = best.ok() ? trainer.LoadCheckpoint(*best, /*weights_only=*/true) : best.status();
  if (!loaded.ok()) {
    std::fprintf(stderr, "ddlm_train: cannot reload the best model: %s\n", std::string(loaded.message()).c_str());
    return 1;
  }
  absl::StatusOr<ddlm::EvaluationDecision> tested = loop.Test(test, trainer.position().epoch());
  if (!tested.ok()) {
    std::fprintf(stderr, "ddlm_train: %s\n", std::string(tested.status().message()).c_str());
    return 1;
  }
  const double test_loss = tested->loss();
  PrintRule('=');
  std::printf("| End of training | test loss %5.2f | test ppl %8.2f\n", test_loss, std::exp(test_loss));
  PrintRule('=');
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  std::set<std::string> given = ddlm::ParseFlagsOrExit(
      argc, argv, "ddlm_train", "Trains a word-level language model (word_language_model's main.py).");
  absl::StatusOr<ddlm::JobSpec> spec = BuildSpec(given);
  if (!spec.ok()) {
    std::fprintf(stderr, "ddlm_train: %s\n", std::string(spec.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<torch::Device> device = ddlm::ResolveDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) {
    std::fprintf(stderr, "ddlm_train: --device: %s\n", std::string(device.status().message()).c_str());
    return 2;
  }
  return Run(*spec, *device);
}
