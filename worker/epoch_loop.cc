#include "worker/epoch_loop.h"

#include <chrono>

#include "common/base/status_macros.h"
#include "common/base/validation_rule.h"

namespace ddlm {

absl::StatusOr<EvaluationDecision> LocalValidationArbiter::Decide(Split split, int32_t /*epoch*/,
                                                                  const EvalResult& local, double /*train_seconds*/) {
  EvaluationDecision decision;
  decision.set_loss(local.mean_loss());
  decision.set_tokens(local.tokens);
  if (split == VALID) {
    const ValidationOutcome outcome = DecideAfterValidation(decision.loss(), trainer_->best_val_loss(), trainer_->lr(),
                                                            trainer_->spec().optimizer().anneal_factor());
    decision.set_best(outcome.best);
    decision.set_lr(outcome.lr);
  }
  return decision;
}

EpochLoop::EpochLoop(Trainer* trainer, ValidationArbiter* arbiter, EpochLoopOptions options)
    : trainer_(trainer), arbiter_(arbiter), options_(std::move(options)) {}

absl::StatusOr<bool> EpochLoop::Train(const torch::Tensor& train, const torch::Tensor& valid) {
  const int32_t epochs = trainer_->spec().schedule().epochs();
  while (trainer_->position().epoch() <= epochs) {
    EpochEnd end;
    end.epoch = trainer_->position().epoch();
    const auto train_start = std::chrono::steady_clock::now();
    DDLM_ASSIGN_OR_RETURN(end.summary, trainer_->TrainEpoch(train, options_.stop));
    if (end.summary.interrupted) return false;
    end.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
    const auto eval_start = std::chrono::steady_clock::now();
    DDLM_ASSIGN_OR_RETURN(EvalResult local, trainer_->Evaluate(valid, options_.eval_batches));
    end.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count();
    DDLM_ASSIGN_OR_RETURN(end.decision, arbiter_->Decide(VALID, end.epoch, local, end.train_seconds));
    trainer_->ApplyValidation(end.decision.loss(), ValidationOutcome{end.decision.best(), end.decision.lr()});
    if (end.decision.best() && options_.keep_best) KeepCurrentAsBest();
    if (options_.on_epoch_end) DDLM_RETURN_IF_ERROR(options_.on_epoch_end(end));
  }
  return true;
}

void EpochLoop::KeepCurrentAsBest() {
  best_weights_.clear();
  for (const torch::Tensor& p : trainer_->model().parameters()) best_weights_.push_back(p.detach().clone());
}

bool EpochLoop::RestoreBest() {
  if (best_weights_.empty()) return false;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> params = trainer_->model().parameters();
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(best_weights_[i]);
  return true;
}

absl::StatusOr<EvaluationDecision> EpochLoop::Test(const torch::Tensor& test, int32_t epoch) {
  DDLM_ASSIGN_OR_RETURN(EvalResult local, trainer_->Evaluate(test, options_.eval_batches));
  return arbiter_->Decide(TEST, epoch, local, 0);
}

}  // namespace ddlm
