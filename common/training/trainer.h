#ifndef DDLM_COMMON_TRAINING_TRAINER_H_
#define DDLM_COMMON_TRAINING_TRAINER_H_

// The training loop of word_language_model's main.py, as a class that a single-process
// binary and a distributed worker both drive:
//
//   for each epoch:  TrainEpoch(train) -> Evaluate(valid) -> ApplyValidation(decision)
//
// (worker/epoch_loop.h runs that loop; a ValidationArbiter makes the decision.)
// TrainEpoch runs bptt windows from position().batch to the end of the epoch:
// zero grads, detach the recurrent state, forward, NLL loss, backward, the optional
// gradient reducer (a data-parallel all-reduce), gradient-norm clipping, then an SGD
// (p -= lr * grad) or AdamW step. ApplyValidation records the best validation loss and
// takes the learning rate the decision gives (divided by anneal_factor when validation
// did not improve: common/base/validation_rule.h); the new rate reaches AdamW's parameter
// groups too.
//
// Devices: the model, recurrent state, batches, loss and optimizer state live on the
// trainer's device ("cpu" or "cuda:N"); the host reads the loss back only at log
// intervals and after an evaluation, and tensors cross to the host only for
// checkpoints. schedule.precision BF16 runs forward passes under autocast
// (common/training/autocast.h) with float32 master weights. A step that runs out of device
// memory returns RESOURCE_EXHAUSTED naming what it tried to allocate.
//
// Threading: not thread-safe; one thread drives a Trainer. The `stop` flag passed to
// TrainEpoch may be set from any thread or a signal handler.

#include <atomic>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/base/corpus.h"
#include "common/base/validation_rule.h"
#include "common/training/checkpoint.h"
#include "common/training/model.h"
#include "proto/config.pb.h"

namespace ddlm {

// Training loss over one log interval, as word_language_model prints it.
struct IntervalReport {
  int32_t epoch = 0;
  int64_t batch = 0;        // 0-based index of the last batch in the interval.
  int64_t num_batches = 0;  // rows / bptt, as upstream prints it.
  double lr = 0;
  double ms_per_batch = 0;
  double loss = 0;  // Mean training loss over the interval.
  double tokens_per_second = 0;
  // Batches trained in the interval: log_interval, log_interval + 1 for an epoch's
  // first (batches 0 through log_interval, as upstream counts), or fewer for the first
  // after a resume mid-interval.
  int64_t batches = 0;
};

struct EvalResult {
  double loss_sum = 0;  // Sum of per-token NLL.
  int64_t tokens = 0;
  // NaN when nothing was evaluated, so an empty split can never look like a perfect one.
  double mean_loss() const { return tokens > 0 ? loss_sum / tokens : std::numeric_limits<double>::quiet_NaN(); }
};

struct EpochSummary {
  int64_t batches = 0;  // Steps run by this call.
  int64_t tokens = 0;
  double seconds = 0;
  bool interrupted = false;  // `stop` was set; position() is where training stopped.
};

class Trainer {
 public:
  // Called after backward and before clipping with every parameter's gradient, in
  // model order (all ranks call it in the same order). Must leave each gradient in
  // place, e.g. replaced by the average over ranks.
  using GradientReducer = std::function<absl::Status(const std::vector<torch::Tensor>& grads)>;
  using IntervalCallback = std::function<void(const IntervalReport&)>;
  // Called after every optimizer step; a non-OK status ends the epoch with that error.
  using StepCallback = std::function<absl::Status(const Trainer&)>;

  // `spec` must have defaults applied and be valid; `device` must exist (see
  // ResolveDevice). Seeds LibTorch's default generators with spec.schedule.seed, builds
  // the model on the CPU (so that every device starts from the same weights), then
  // moves it to `device`.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const JobSpec& spec, const Dictionary& vocabulary,
                                                         torch::Device device = torch::kCPU);

  void set_gradient_reducer(GradientReducer reducer) { reducer_ = std::move(reducer); }
  void set_interval_callback(IntervalCallback callback) { on_interval_ = std::move(callback); }
  void set_step_callback(StepCallback callback) { on_step_ = std::move(callback); }

  // `data` may be on any device (it is copied to the trainer's once per call).
  absl::StatusOr<EpochSummary> TrainEpoch(const torch::Tensor& data, const std::atomic<bool>* stop = nullptr);

  // Loss over `data` ([rows, batch]) with a fresh zero state, in eval mode (no
  // dropout). `max_batches` > 0 stops early. RESOURCE_EXHAUSTED if the device runs out
  // of memory.
  absl::StatusOr<EvalResult> Evaluate(const torch::Tensor& data, int64_t max_batches = 0);

  // Ends the current epoch with a decision made by a ValidationArbiter (this process's
  // for ddlm_train, the coordinator's in a job): records `val_loss`, as the best if
  // `outcome.best`, and takes `outcome.lr`. The trainer applies decisions and never
  // makes them.
  void ApplyValidation(double val_loss, const ValidationOutcome& outcome);

  // Full training state: model, recurrent state, RNG, optimizer, position, lr.
  absl::StatusOr<Checkpoint> MakeCheckpoint() const;
  // Restores what MakeCheckpoint saved; with `weights_only`, just the parameters.
  // Compatibility (vocabulary, model shape) is checked before anything changes; if a
  // later part fails to load, the trainer is left partly restored and must not be used.
  absl::Status LoadCheckpoint(const Checkpoint& checkpoint, bool weights_only);

  LanguageModelImpl& model() { return *model_; }
  const torch::Device& device() const { return device_; }
  const JobSpec& spec() const { return spec_; }
  double lr() const { return lr_; }
  void set_lr(double lr);
  std::optional<double> best_val_loss() const { return best_val_loss_; }
  const TrainingPosition& position() const { return position_; }
  // Mean training loss of the most recent step (NaN before the first). On a GPU this
  // waits for the step to finish.
  double last_step_loss() const;
  int64_t num_parameters() const;

  // What the last training step computed in (schedule.precision BF16 is autocast: this
  // shows whether it took effect, and where). `recurrent`: the dtype the recurrent
  // layers returned their state in, i.e. ran in (none for the Transformer); under BF16,
  // bfloat16 on a CPU whose oneDNN has a bfloat16 LSTM (float32 otherwise, autocast.h),
  // and on a GPU float16: PyTorch's autocast runs cuDNN RNNs in half precision whatever
  // the autocast dtype. `scores`: the decoder's output, bfloat16 under BF16 (on the
  // CPU the fused loss keeps them, loss.h). Unset before the first step.
  struct StepPrecision {
    std::optional<torch::ScalarType> recurrent;
    std::optional<torch::ScalarType> scores;
  };
  const StepPrecision& last_step_precision() const { return last_step_precision_; }

 private:
  Trainer(const JobSpec& spec, const Dictionary& vocabulary, std::shared_ptr<LanguageModelImpl> model,
          torch::Device device);
  // One training step on `batch`: forward, loss, backward, reduce, clip, update.
  absl::Status Step(const torch::Tensor& data, const torch::Tensor& targets);
  // Scales all gradients so that their joint L2 norm is at most `max_norm`, on the
  // device (no host synchronisation), as torch.nn.utils.clip_grad_norm_.
  void ClipGradients(double max_norm);
  // min(1, max_norm / (norm + 1e-6)) of the gradients' joint L2 norm, as a 0-dim
  // tensor on the device (undefined when no parameter has a gradient), and read back.
  torch::Tensor ClipCoefficientTensor(double max_norm) const;
  double ClipCoefficient(double max_norm) const;

  JobSpec spec_;
  std::vector<std::string> vocabulary_;
  uint64_t vocabulary_fingerprint_;
  std::shared_ptr<LanguageModelImpl> model_;
  torch::Device device_;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<torch::optim::AdamW> adamw_;  // Null for SGD.
  RecurrentState state_;
  double lr_;
  std::optional<double> best_val_loss_;
  std::optional<double> last_val_loss_;
  TrainingPosition position_;
  torch::Tensor last_step_loss_;  // 0-dim, on device_; undefined before the first step.
  StepPrecision last_step_precision_;
  GradientReducer reducer_;
  IntervalCallback on_interval_;
  StepCallback on_step_;
};

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_TRAINER_H_
