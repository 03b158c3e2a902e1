#include "coordinator/text_generator.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/training/checkpoint.h"
#include "common/training/model.h"

namespace ddlm {

absl::StatusOr<GenerateOptions> TextGenerator::ParseRequest(const GenerateRequest& request) const {
  GenerateOptions options;
  options.words = request.has_words() ? request.words() : 100;
  options.temperature = request.has_temperature() ? request.temperature() : 1.0;
  options.top_k = request.has_top_k() ? request.top_k() : 0;
  options.seed = request.has_seed() ? request.seed() : 1111;
  if (options.words < 1 || options.words > options_.max_words) {
    return absl::InvalidArgumentError(
        absl::StrCat("words must be in [1, ", options_.max_words, "], got ", options.words));
  }
  if (!(options.temperature >= 1e-3)) {
    return absl::InvalidArgumentError(absl::StrCat("temperature must be >= 1e-3, got ", options.temperature));
  }
  if (options.top_k < 0) return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0, got ", options.top_k));
  return options;
}

absl::StatusOr<GenerateResponse> TextGenerator::Generate(const std::string& path, const std::string& checkpoint_id,
                                                         GenerateOptions options) {
  {
    absl::MutexLock lock(&mu_);
    if (running_ >= options_.max_running) {
      return absl::ResourceExhaustedError(
          absl::StrCat(options_.max_running, " generation(s) already running; try again when one finishes"));
    }
    ++running_;
  }
  struct Slot {
    TextGenerator* self;
    ~Slot() {
      absl::MutexLock lock(&self->mu_);
      --self->running_;
    }
  } slot{this};
  if (options_.while_running_for_testing) options_.while_running_for_testing();
  DDLM_ASSIGN_OR_RETURN(Checkpoint checkpoint, ReadCheckpointFile(path));
  const CheckpointHeader& h = checkpoint.header;
  DDLM_ASSIGN_OR_RETURN(std::shared_ptr<LanguageModelImpl> model, BuildModel(h.spec().model(), h.vocabulary_size()));
  DDLM_RETURN_IF_ERROR(RestoreModel(checkpoint, *model));
  // The context the model was trained on (the spec's bptt, 35 by default).
  options.max_context = h.spec().data().has_bptt() ? h.spec().data().bptt() : 35;
  DDLM_ASSIGN_OR_RETURN(std::vector<int64_t> ids, GenerateIds(*model, options));
  GenerateResponse response;
  response.set_checkpoint_id(checkpoint_id);
  std::string* text = response.mutable_text();
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& word = h.vocabulary(static_cast<int>(ids[i]));
    text->append(word);
    text->append(i % 20 == 19 ? "\n" : " ");  // As generate.py writes it.
  }
  return response;
}

}  // namespace ddlm
