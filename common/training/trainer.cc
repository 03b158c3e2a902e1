#include "common/training/trainer.h"

#include <chrono>
#include <ctime>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/training/autocast.h"
#include "common/training/batching.h"
#include "common/training/device.h"
#include "common/training/loss.h"

namespace ddlm {

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const JobSpec& spec, const Dictionary& vocabulary,
                                                         torch::Device device) {
  try {
    if (spec.schedule().precision() == BF16 && device.is_cpu() && !CpuHasNativeBfloat16()) {
      LOG(WARNING) << "schedule.precision BF16 on a CPU without AVX-512 BF16 or AMX: LibTorch "
                      "emulates bfloat16 products, so this trains slower than FP32 would";
    }
    torch::manual_seed(spec.schedule().seed());
    DDLM_ASSIGN_OR_RETURN(std::shared_ptr<LanguageModelImpl> model, BuildModel(spec.model(), vocabulary.size()));
    model->to(device);
    return std::unique_ptr<Trainer>(new Trainer(spec, vocabulary, std::move(model), device));
  } catch (const c10::Error& e) {
    return DeviceErrorStatus(e, device, "building the model");
  }
}

Trainer::Trainer(const JobSpec& spec, const Dictionary& vocabulary, std::shared_ptr<LanguageModelImpl> model,
                 torch::Device device)
    : spec_(spec),
      vocabulary_(vocabulary.words()),
      vocabulary_fingerprint_(vocabulary.Fingerprint()),
      model_(std::move(model)),
      device_(device),
      params_(model_->parameters()),
      lr_(spec.optimizer().lr()) {
  if (spec_.optimizer().type() == ADAMW) {
    adamw_ = std::make_unique<torch::optim::AdamW>(
        params_, torch::optim::AdamWOptions(lr_).weight_decay(spec_.optimizer().weight_decay()));
  }
  position_.set_epoch(1);
}

void Trainer::set_lr(double lr) {
  lr_ = lr;
  if (adamw_) {
    for (auto& group : adamw_->param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
  }
}

int64_t Trainer::num_parameters() const {
  int64_t n = 0;
  for (const torch::Tensor& p : params_) n += p.numel();
  return n;
}

double Trainer::last_step_loss() const {
  return last_step_loss_.defined() ? last_step_loss_.item<double>() : std::numeric_limits<double>::quiet_NaN();
}

torch::Tensor Trainer::ClipCoefficientTensor(double max_norm) const {
  std::vector<torch::Tensor> norms;
  for (const torch::Tensor& p : params_) {
    if (p.grad().defined()) norms.push_back(p.grad().norm());
  }
  if (norms.empty()) return torch::Tensor();
  torch::Tensor total = torch::stack(norms).norm();
  return torch::clamp_max(max_norm / (total + 1e-6), 1.0);
}

double Trainer::ClipCoefficient(double max_norm) const {
  torch::Tensor coef = ClipCoefficientTensor(max_norm);
  return coef.defined() ? coef.item<double>() : 1.0;
}

void Trainer::ClipGradients(double max_norm) {
  torch::Tensor coef = ClipCoefficientTensor(max_norm);
  if (!coef.defined()) return;
  for (torch::Tensor& p : params_) {
    if (p.grad().defined()) p.mutable_grad().mul_(coef);
  }
}

absl::Status Trainer::Step(const torch::Tensor& data, const torch::Tensor& targets) {
  // Undefined grads let backward hand its buffers over instead of adding them into
  // zeroed ones (two fewer passes over the 2 x ntoken x nhid embedding/decoder grads).
  model_->zero_grad(/*set_to_none=*/true);
  // SGD on the CPU with no all-reduce: only the embedding rows this batch used get a
  // gradient (norm and update touch just those); everything else takes dense ones.
  model_->set_sparse_embedding_gradient(device_.is_cpu() && !adamw_ && !reducer_);
  DetachState(&state_);
  torch::Tensor loss;
  {
    LanguageModelImpl::DecoderInput d;
    {
      AutocastGuard autocast(device_, spec_.schedule().precision());
      d = model_->Features(data, &state_);
      if (!device_.is_cpu()) {
        // On a GPU: linear + CrossEntropy, the decoder under autocast.
        torch::Tensor scores = torch::linear(d.hidden, d.weight, d.bias);
        last_step_precision_.scores = scores.scalar_type();
        loss = CrossEntropy(scores, targets);
      }
    }
    if (!loss.defined()) {
      // On the CPU, the decoder and the loss in one (common/training/loss.h): it never makes a
      // pass over the whole score matrix that it can avoid; under BF16 its GEMMs run
      // in bfloat16 and the softmax in float32, as autocast would run them.
      const bool bf16 = spec_.schedule().precision() == BF16;
      loss = LinearCrossEntropy(d.hidden, d.weight, d.bias, targets, kDefaultLossBlockRows, /*bf16_matmul=*/bf16);
      last_step_precision_.scores = bf16 ? torch::kBFloat16 : torch::kFloat;
    }
  }
  last_step_precision_.recurrent.reset();
  if (!state_.empty()) last_step_precision_.recurrent = state_[0].scalar_type();
  // Autocast leaves bfloat16 recurrent state; float32 holds it exactly, and keeps the
  // state (and checkpoints of it) in one dtype.
  for (torch::Tensor& t : state_) {
    if (t.scalar_type() != torch::kFloat) t = t.to(torch::kFloat);
  }
  loss.backward();
  if (reducer_) {
    std::vector<torch::Tensor> grads;
    grads.reserve(params_.size());
    for (torch::Tensor& p : params_) {
      // Every rank must reduce the same tensors, used in this step or not.
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
    }
    DDLM_RETURN_IF_ERROR(reducer_(grads));
  }
  {
    torch::NoGradGuard no_grad;
    const double clip = spec_.optimizer().clip();
    if (!adamw_ && device_.is_cpu()) {
      // SGD on the CPU: the clipping factor folded into the update, one pass over each
      // gradient instead of two (reading the norm back costs nothing on the CPU).
      const double coef = clip > 0 ? ClipCoefficient(clip) : 1.0;
      for (torch::Tensor& p : params_) {
        if (p.grad().defined()) p.add_(p.grad(), -lr_ * coef);
      }
    } else {
      if (clip > 0) ClipGradients(clip);
      if (adamw_) {
        adamw_->step();
      } else {
        for (torch::Tensor& p : params_) {
          if (p.grad().defined()) p.add_(p.grad(), -lr_);
        }
      }
    }
  }
  last_step_loss_ = loss.detach();
  return absl::OkStatus();
}

absl::StatusOr<EpochSummary> Trainer::TrainEpoch(const torch::Tensor& data_any, const std::atomic<bool>* stop) {
  using Clock = std::chrono::steady_clock;
  const int64_t bptt = spec_.data().bptt();
  const int64_t batch_size = data_any.size(1);
  const int64_t num_windows = NumBatches(data_any, bptt);
  int64_t end = num_windows;
  if (spec_.schedule().max_batches_per_epoch() > 0) {
    end = std::min(end, spec_.schedule().max_batches_per_epoch());
  }
  if (spec_.schedule().dry_run()) end = std::min<int64_t>(end, 1);
  const int64_t log_interval = spec_.schedule().log_interval();

  torch::Tensor data;
  try {
    data = data_any.to(device_);
    model_->train();
    if (position_.batch() == 0 || state_.empty()) state_ = model_->InitState(batch_size);
  } catch (const c10::Error& e) {
    return DeviceErrorStatus(e, device_, "loading the training data");
  }

  EpochSummary summary;
  const auto epoch_start = Clock::now();
  auto interval_start = epoch_start;
  // Summed on the device, read once per log interval (no per-step host sync).
  torch::Tensor interval_loss = torch::zeros({}, torch::TensorOptions(device_).dtype(torch::kDouble));
  int64_t interval_tokens = 0;
  int64_t interval_batches = 0;
  for (int64_t b = position_.batch(); b < end; ++b) {
    if (stop != nullptr && stop->load()) {
      summary.interrupted = true;
      break;
    }
    Batch batch = GetBatch(data, b * bptt, bptt);
    absl::Status status;
    try {
      status = Step(batch.data, batch.targets);
      if (status.ok()) interval_loss += last_step_loss_.to(torch::kDouble);
    } catch (const c10::Error& e) {
      status =
          DeviceErrorStatus(e, device_, absl::StrCat("training step (epoch ", position_.epoch(), ", batch ", b, ")"));
    }
    if (!status.ok()) {
      state_.clear();  // The next TrainEpoch starts from a fresh state.
      return status;
    }
    const int64_t tokens = batch.targets.numel();
    interval_tokens += tokens;
    interval_batches += 1;
    summary.batches += 1;
    summary.tokens += tokens;
    position_.set_batch(b + 1);
    position_.set_global_step(position_.global_step() + 1);
    if (b % log_interval == 0 && b > 0) {
      const double interval_sum = interval_loss.item<double>();  // Waits for the device.
      const auto now = Clock::now();
      const double seconds = std::chrono::duration<double>(now - interval_start).count();
      if (on_interval_) {
        IntervalReport report;
        report.epoch = position_.epoch();
        report.batch = b;
        report.num_batches = data.size(0) / bptt;
        report.lr = lr_;
        // Upstream divides by log_interval even for an epoch's first interval, which
        // holds one batch more (kept, for the same figures); an interval cut short by a
        // resume is divided by what it holds, or its loss would read far too low.
        const int64_t divisor = interval_batches > log_interval ? log_interval : interval_batches;
        report.ms_per_batch = seconds * 1000.0 / static_cast<double>(divisor);
        report.loss = interval_sum / static_cast<double>(divisor);
        report.tokens_per_second = seconds > 0 ? interval_tokens / seconds : 0;
        report.batches = interval_batches;
        on_interval_(report);
      }
      interval_loss.zero_();
      interval_tokens = 0;
      interval_batches = 0;
      interval_start = now;
    }
    if (on_step_) DDLM_RETURN_IF_ERROR(on_step_(*this));
  }
  if (device_.is_cuda()) torch::cuda::synchronize(device_.index());  // Honest epoch time.
  summary.seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
  return summary;
}

absl::StatusOr<EvalResult> Trainer::Evaluate(const torch::Tensor& data_any, int64_t max_batches) {
  const int64_t bptt = spec_.data().bptt();
  EvalResult result;
  try {
    torch::Tensor data = data_any.to(device_);
    model_->eval();
    torch::NoGradGuard no_grad;
    RecurrentState state = model_->InitState(data.size(1));
    torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions(device_).dtype(torch::kDouble));
    int64_t n = 0;
    for (int64_t i = 0; i < data.size(0) - 1; i += bptt) {
      if (max_batches > 0 && n++ >= max_batches) break;
      Batch batch = GetBatch(data, i, bptt);
      torch::Tensor loss;  // Summed, float64.
      LanguageModelImpl::DecoderInput d;
      {
        AutocastGuard autocast(device_, spec_.schedule().precision());
        d = model_->Features(batch.data, &state);
        if (!device_.is_cpu()) {
          torch::Tensor logits = torch::linear(d.hidden, d.weight, d.bias);  // Under autocast.
          loss = torch::nll_loss(torch::log_softmax(logits.to(torch::kFloat), 1), batch.targets, {}, at::Reduction::Sum)
                     .to(torch::kDouble);
        }
      }
      if (!loss.defined()) {
        // The fused decoder + loss, forward only (common/training/loss.h).
        loss = LinearNllSum(d.hidden, d.weight, d.bias, batch.targets,
                            /*bf16_matmul=*/spec_.schedule().precision() == BF16);
      }
      loss_sum += loss;
      result.tokens += batch.targets.numel();
    }
    result.loss_sum = loss_sum.item<double>();
  } catch (const c10::Error& e) {
    model_->train();
    return DeviceErrorStatus(e, device_, "evaluation");
  }
  model_->train();
  return result;
}

void Trainer::ApplyValidation(double val_loss, const ValidationOutcome& outcome) {
  last_val_loss_ = val_loss;
  if (outcome.best) best_val_loss_ = val_loss;
  if (outcome.lr != lr_) set_lr(outcome.lr);
  position_.set_epoch(position_.epoch() + 1);
  position_.set_batch(0);
  state_.clear();
}

absl::StatusOr<Checkpoint> Trainer::MakeCheckpoint() const {
  Checkpoint checkpoint;
  CheckpointHeader& h = checkpoint.header;
  *h.mutable_spec() = spec_;
  for (const std::string& w : vocabulary_) h.add_vocabulary(w);
  h.set_vocabulary_fingerprint(vocabulary_fingerprint_);
  *h.mutable_position() = position_;
  h.set_lr(lr_);
  if (best_val_loss_) h.set_best_val_loss(*best_val_loss_);
  if (last_val_loss_) h.set_val_loss(*last_val_loss_);
  h.set_created_unix_seconds(static_cast<int64_t>(std::time(nullptr)));
  CaptureModel(*model_, position_.batch() > 0 ? &state_ : nullptr, &checkpoint);
  CaptureRng(device_, &checkpoint);
  if (adamw_) DDLM_RETURN_IF_ERROR(CaptureOptimizer(*adamw_, &checkpoint));
  return checkpoint;
}

absl::Status Trainer::LoadCheckpoint(const Checkpoint& checkpoint, bool weights_only) {
  DDLM_RETURN_IF_ERROR(
      CheckCompatible(checkpoint, vocabulary_fingerprint_, static_cast<int64_t>(vocabulary_.size()), spec_.model()));
  DDLM_RETURN_IF_ERROR(RestoreModel(checkpoint, *model_));
  if (weights_only) return absl::OkStatus();
  const CheckpointHeader& h = checkpoint.header;
  if (adamw_) DDLM_RETURN_IF_ERROR(RestoreOptimizer(checkpoint, device_, *adamw_));
  DDLM_RETURN_IF_ERROR(RestoreRng(checkpoint, device_));
  position_ = h.position();
  set_lr(h.lr());
  best_val_loss_.reset();
  if (h.has_best_val_loss()) best_val_loss_ = h.best_val_loss();
  last_val_loss_.reset();
  if (h.has_val_loss()) last_val_loss_ = h.val_loss();
  RecurrentState state = RestoreState(checkpoint);
  if (!state.empty()) {
    RecurrentState expected = model_->InitState(spec_.data().batch_size());
    bool same = state.size() == expected.size();
    for (size_t i = 0; same && i < state.size(); ++i) same = state[i].sizes() == expected[i].sizes();
    if (!same) {
      return absl::FailedPreconditionError(absl::StrCat("checkpoint's recurrent state does not fit data.batch_size ",
                                                        spec_.data().batch_size(),
                                                        " (was the batch size changed mid-epoch?)"));
    }
  }
  for (torch::Tensor& t : state) t = t.to(device_);
  state_ = std::move(state);
  return absl::OkStatus();
}

}  // namespace ddlm
