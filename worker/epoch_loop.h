#ifndef DDLM_WORKER_EPOCH_LOOP_H_
#define DDLM_WORKER_EPOCH_LOOP_H_

// The epoch loop of word_language_model, shared by ddlm_train and a job's ranks:
//
//   while epochs are left:  TrainEpoch(train) -> Evaluate(valid) -> arbiter decides
//                           -> the trainer applies it -> best weights kept (keep_best)
//                           -> epoch-end hook
//   then (Test):            Evaluate(test) of the weights the caller restored
//                           (RestoreBest, or a saved file) -> arbiter combines
//
// What happens after a validation is decided by a ValidationArbiter, never by the loop
// or the trainer: locally for ddlm_train (LocalValidationArbiter, word_language_model's
// rule on this process's loss), by the coordinator for a job (every rank reports its
// loss sum and gets the same decision, worker/job_runner.cc). The trainer applies
// decisions (Trainer::ApplyValidation).
//
// Threading: not thread-safe; the thread that drives the trainer runs the loop. The
// stop flag may be set from any thread or a signal handler.

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/training/trainer.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

class ValidationArbiter {
 public:
  virtual ~ValidationArbiter() = default;
  // This process's evaluation of `split` (VALID after epoch `epoch`'s training, which
  // took `train_seconds`; TEST at the end) -> the decision to apply: the loss over every
  // rank, and for VALID whether it is the best so far and the learning rate from now on.
  virtual absl::StatusOr<EvaluationDecision> Decide(Split split, int32_t epoch, const EvalResult& local,
                                                    double train_seconds) = 0;
};

// One process decides alone, by word_language_model's rule (common/base/validation_rule.h),
// from the trainer's best loss and learning rate.
class LocalValidationArbiter : public ValidationArbiter {
 public:
  explicit LocalValidationArbiter(const Trainer* trainer /* not owned */) : trainer_(trainer) {}
  absl::StatusOr<EvaluationDecision> Decide(Split split, int32_t epoch, const EvalResult& local,
                                            double train_seconds) override;

 private:
  const Trainer* const trainer_;
};

// One epoch's end, for the loop's hook.
struct EpochEnd {
  int32_t epoch = 0;
  EpochSummary summary;         // Its training.
  double train_seconds = 0;     // TrainEpoch's wall time (what the arbiter is told).
  double eval_seconds = 0;      // Its validation.
  EvaluationDecision decision;  // As applied.
};

struct EpochLoopOptions {
  // Evaluate's max_batches (0: all; dry runs evaluate one).
  int64_t eval_batches = 0;
  // Set (from anywhere) to stop training at the next step.
  const std::atomic<bool>* stop = nullptr;
  // Keep a copy of the best weights in memory (on the trainer's device) for
  // RestoreBest. ddlm_train saves them to a file instead, as upstream does.
  bool keep_best = true;
  // After each epoch's decision has been applied and its best weights kept: log,
  // checkpoint. A non-OK status ends the loop with it.
  std::function<absl::Status(const EpochEnd&)> on_epoch_end;
};

class EpochLoop {
 public:
  // Neither owned; both outlive the loop.
  EpochLoop(Trainer* trainer, ValidationArbiter* arbiter, EpochLoopOptions options);

  // Trains from the trainer's position through spec.schedule.epochs. Returns true once
  // every epoch is done, false if the stop flag ended it (the trainer's position says
  // where); an error from training, evaluation, the arbiter or the hook ends it too.
  absl::StatusOr<bool> Train(const torch::Tensor& train, const torch::Tensor& valid);

  // Keeps the trainer's current weights as the best (a resumed run whose checkpoint
  // was the best).
  void KeepCurrentAsBest();
  // Whether best weights are kept (an epoch was decided best, or KeepCurrentAsBest).
  bool has_best() const { return !best_weights_.empty(); }
  // Copies the kept best weights into the trainer's model; false (nothing changed) if
  // none are kept.
  bool RestoreBest();

  // Evaluates the trainer's current weights on `test`; the arbiter combines the loss.
  absl::StatusOr<EvaluationDecision> Test(const torch::Tensor& test, int32_t epoch);

 private:
  Trainer* const trainer_;
  ValidationArbiter* const arbiter_;
  const EpochLoopOptions options_;
  std::vector<torch::Tensor> best_weights_;
};

}  // namespace ddlm

#endif  // DDLM_WORKER_EPOCH_LOOP_H_
