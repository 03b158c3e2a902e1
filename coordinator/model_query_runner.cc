#include "coordinator/model_query_runner.h"

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/training/checkpoint.h"

namespace ddlm {
namespace {

// `run()`, with LibTorch's exceptions as INTERNAL: nothing a request holds should make
// the model throw, but a damaged checkpoint (NaN weights) can.
template <typename T, typename F>
absl::StatusOr<T> Guarded(F run) {
  try {
    return run();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("the model failed: ", e.what()));
  }
}

}  // namespace

ModelQueryRunner::Slot::~Slot() {
  if (self == nullptr) return;
  absl::MutexLock lock(&self->mu_);
  --self->running_;
}

absl::StatusOr<TextModel> ModelQueryRunner::Acquire(const std::string& path, Slot* slot) {
  {
    absl::MutexLock lock(&mu_);
    if (running_ >= options_.max_running) {
      return absl::ResourceExhaustedError(
          absl::StrCat(options_.max_running,
                       " model queries (generate, score, attention) already running; try again when one "
                       "finishes"));
    }
    ++running_;
  }
  slot->self = this;
  if (options_.while_running_for_testing) options_.while_running_for_testing();
  DDLM_ASSIGN_OR_RETURN(Checkpoint checkpoint, ReadCheckpointFile(path));
  return LoadTextModel(checkpoint);
}

absl::StatusOr<GenerateResponse> ModelQueryRunner::Generate(const std::string& path, const std::string& checkpoint_id,
                                                            const GenerateRequest& request, const GenerateSink& sink) {
  Slot slot;
  DDLM_ASSIGN_OR_RETURN(TextModel model, Acquire(path, &slot));
  GenerateSink tagged;
  bool first = true;  // Outlives `tagged`, which RunGenerate calls.
  if (sink) {
    tagged = [&](const GenerateResponse& piece) {
      if (!first) return sink(piece);
      first = false;
      GenerateResponse with_id = piece;
      with_id.set_checkpoint_id(checkpoint_id);
      return sink(with_id);
    };
  }
  DDLM_ASSIGN_OR_RETURN(GenerateResponse response, Guarded<GenerateResponse>([&] {
                          return RunGenerate(model, request, options_.limits, tagged);
                        }));
  response.set_checkpoint_id(checkpoint_id);
  return response;
}

absl::StatusOr<ScoreTextResponse> ModelQueryRunner::Score(const std::string& path, const std::string& checkpoint_id,
                                                          const ScoreTextRequest& request, const TextSource& text) {
  Slot slot;
  DDLM_ASSIGN_OR_RETURN(TextModel model, Acquire(path, &slot));
  DDLM_ASSIGN_OR_RETURN(std::string contents, text());
  DDLM_ASSIGN_OR_RETURN(ScoreTextResponse response, Guarded<ScoreTextResponse>([&] {
                          return RunScore(model, request, contents, options_.limits);
                        }));
  response.set_checkpoint_id(checkpoint_id);
  return response;
}

absl::StatusOr<AttentionResponse> ModelQueryRunner::Attention(const std::string& path, const std::string& checkpoint_id,
                                                              const AttentionRequest& request) {
  Slot slot;
  DDLM_ASSIGN_OR_RETURN(TextModel model, Acquire(path, &slot));
  DDLM_ASSIGN_OR_RETURN(AttentionResponse response,
                        Guarded<AttentionResponse>([&] { return RunAttention(model, request, options_.limits); }));
  response.set_checkpoint_id(checkpoint_id);
  return response;
}

}  // namespace ddlm
