#include "common/training/loss.h"

#include <algorithm>

#include <ATen/Parallel.h>

namespace ddlm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class CrossEntropyFunction : public torch::autograd::Function<CrossEntropyFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits, const torch::Tensor& targets) {
    torch::Tensor log_probs = torch::log_softmax(logits, /*dim=*/1);
    torch::Tensor loss = -log_probs.gather(1, targets.unsqueeze(1)).mean();
    ctx->save_for_backward({log_probs, targets});
    return loss;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    torch::Tensor grad = saved[0];  // log-probabilities; not needed after this.
    const torch::Tensor& targets = saved[1];
    const int64_t n = grad.size(0);
    grad.exp_();  // softmax
    grad.scatter_add_(1, targets.unsqueeze(1), torch::full({n, 1}, -1.0, grad.options()));
    grad.mul_(grad_outputs[0] / static_cast<double>(n));
    return {grad, torch::Tensor()};
  }
};

// The fused forward (see loss.h): scores = hidden weight^T written once (by a GEMM in
// `matmul_dtype`, and kept in it), then every block of rows worked on in float32 while it
// is in cache. Fills `row_loss` [N] with each row's NLL; with `for_backward`, also leaves
// E = exp(scores - rowmax) in `exps` (in `matmul_dtype`), 1/sum(E) per row in `inv_sum`,
// the softmax's column sums (the bias gradient's) in `col_sums`, and the weight as the
// GEMMs take it in `matmul_weight`.
struct FusedScores {
  torch::Tensor row_loss, exps, inv_sum, col_sums, matmul_weight;
};

FusedScores ScoreBlocks(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& bias,
                        const torch::Tensor& targets, int64_t block_rows, torch::ScalarType matmul_dtype,
                        bool for_backward) {
  torch::NoGradGuard no_grad;
  const int64_t n = hidden.size(0);
  const int64_t v = weight.size(0);
  const torch::TensorOptions f32 = hidden.options().dtype(torch::kFloat);
  FusedScores out;
  out.matmul_weight = weight.detach().to(matmul_dtype);
  // The one write of the score matrix.
  out.exps = torch::mm(hidden.detach().to(matmul_dtype), out.matmul_weight.t());
  const bool narrow_scores = out.exps.scalar_type() != torch::kFloat;
  out.row_loss = torch::empty({n}, f32);
  out.inv_sum = torch::empty({n}, f32);
  const int threads = at::get_num_threads();
  torch::Tensor col_sums = for_backward ? torch::zeros({threads, v}, f32) : torch::Tensor();
  const torch::Tensor bias_row = bias.detach().to(torch::kFloat).unsqueeze(0);
  // Every block of rows is read from memory once and worked on while it is in cache;
  // the operations inside run on this thread (LibTorch does not nest parallelism).
  at::parallel_for(0, n, block_rows, [&](int64_t begin, int64_t end) {
    torch::NoGradGuard no_grad;  // Grad mode is per thread; the pool's threads have it on.
    torch::Tensor col_sum;
    if (for_backward) col_sum = col_sums[at::get_thread_num()];
    for (int64_t r0 = begin; r0 < end; r0 += block_rows) {
      const int64_t rows = std::min(block_rows, end - r0);
      torch::Tensor stored = out.exps.narrow(0, r0, rows);
      // bfloat16 scores: the softmax and the loss in float32, as autocast does.
      torch::Tensor block = narrow_scores ? stored.to(torch::kFloat) : stored;
      block.add_(bias_row);
      torch::Tensor max = block.amax({1}, /*keepdim=*/true);
      torch::Tensor target = block.gather(1, targets.narrow(0, r0, rows).unsqueeze(1));
      block.sub_(max).exp_();
      torch::Tensor inv = block.sum({1}).reciprocal_();
      out.inv_sum.narrow(0, r0, rows).copy_(inv);
      // loss = log(sum) + max - target = -log(inv) + max - target
      out.row_loss.narrow(0, r0, rows).copy_((max - target).squeeze(1) - inv.log());
      if (for_backward) {
        col_sum.addmv_(block.t(), inv);  // softmax's column sums
        if (narrow_scores) stored.copy_(block);
      }
    }
  });
  if (for_backward) {
    out.col_sums = col_sums.sum({0});
  } else {
    out.exps.reset();
  }
  return out;
}

// See loss.h. Saved for backward: hidden, targets, 1/sum(E) per row, the softmax's
// column sums, E = exp(scores - rowmax) [N, V] and the weight as the GEMMs take it.
class LinearCrossEntropyFunction : public torch::autograd::Function<LinearCrossEntropyFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& bias, const torch::Tensor& targets, int64_t block_rows,
                               bool bf16_matmul) {
    FusedScores f =
        ScoreBlocks(hidden, weight, bias, targets, block_rows, bf16_matmul ? torch::kBFloat16 : torch::kFloat,
                    /*for_backward=*/true);
    ctx->save_for_backward({hidden, targets, f.inv_sum, f.col_sums});
    ctx->saved_data["exps"] = f.exps;
    ctx->saved_data["matmul_weight"] = f.matmul_weight;
    ctx->saved_data["weight_dtype"] = static_cast<int64_t>(weight.scalar_type());
    return f.row_loss.mean();
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor& hidden = saved[0];
    const torch::Tensor& targets = saved[1];
    const torch::Tensor& inv_sum = saved[2];
    const torch::Tensor& softmax_col_sums = saved[3];
    torch::Tensor exps = ctx->saved_data["exps"].toTensor();
    const torch::Tensor weight = ctx->saved_data["matmul_weight"].toTensor();
    const auto weight_dtype = static_cast<torch::ScalarType>(ctx->saved_data["weight_dtype"].toInt());
    ctx->saved_data.erase("exps");
    ctx->saved_data.erase("matmul_weight");
    const int64_t n = hidden.size(0);
    // The fused path runs on the CPU only, where reading the scalar costs nothing.
    const double scale = grad_outputs[0].item<double>() / static_cast<double>(n);
    // d loss / d scores = (softmax - onehot) * scale, with softmax = diag(inv_sum) E.
    // The row scaling moves onto the small matrices, so E is used as it is:
    //   d hidden = diag(inv_sum * scale) (E W) - scale W[targets]
    //   d weight = E^T (diag(inv_sum * scale) hidden) - scale onehot^T hidden
    //   d bias   = scale (colsum(softmax) - count(targets))
    // The GEMMs run in E's dtype; the small corrections, and the results, in float32
    // (the master weights' gradients).
    const torch::Tensor row_scale = (inv_sum * scale).unsqueeze(1);
    const torch::Tensor hidden_f32 = hidden.to(torch::kFloat);
    torch::Tensor grad_hidden = torch::mm(exps, weight).to(torch::kFloat).mul_(row_scale);
    grad_hidden.sub_(weight.index_select(0, targets).to(torch::kFloat), scale);
    torch::Tensor grad_weight = torch::mm(exps.t(), (hidden_f32 * row_scale).to(exps.scalar_type())).to(torch::kFloat);
    exps.reset();
    grad_weight.index_add_(0, targets, hidden_f32, -scale);
    torch::Tensor grad_bias = softmax_col_sums * scale;
    grad_bias.index_add_(0, targets, torch::full({n}, -scale, grad_bias.options()));
    return {grad_hidden.to(hidden.scalar_type()),
            grad_weight.to(weight_dtype),
            grad_bias,
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

torch::Tensor CrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  // Under autocast the logits come in bfloat16: the softmax and the loss are taken in
  // float32 (the cast is part of the graph, so its gradient goes back as bfloat16).
  if (logits.scalar_type() != torch::kFloat) {
    return CrossEntropyFunction::apply(logits.to(torch::kFloat), targets);
  }
  return CrossEntropyFunction::apply(logits, targets);
}

bool LinearCrossEntropyIsFused(const torch::Tensor& hidden, const torch::Tensor& weight) {
  const auto ok = [](const torch::Tensor& t) {
    return t.device().is_cpu() && (t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kBFloat16);
  };
  return ok(hidden) && ok(weight) && hidden.dim() == 2;
}

torch::Tensor LinearNllSum(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& bias,
                           const torch::Tensor& targets, bool bf16_matmul) {
  torch::NoGradGuard no_grad;
  if (!LinearCrossEntropyIsFused(hidden, weight)) {
    torch::Tensor logits = torch::linear(hidden, weight, bias);
    return torch::nll_loss(torch::log_softmax(logits.to(torch::kFloat), 1), targets, {}, at::Reduction::Sum)
        .to(torch::kDouble);
  }
  return ScoreBlocks(hidden.contiguous(), weight, bias, targets, kDefaultLossBlockRows,
                     bf16_matmul ? torch::kBFloat16 : torch::kFloat, /*for_backward=*/false)
      .row_loss.sum(torch::kDouble);
}

torch::Tensor LinearCrossEntropy(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& bias,
                                 const torch::Tensor& targets, int64_t block_rows, bool bf16_matmul) {
  if (!LinearCrossEntropyIsFused(hidden, weight) || block_rows < 1) {
    return CrossEntropy(torch::linear(hidden, weight, bias), targets);
  }
  return LinearCrossEntropyFunction::apply(hidden.contiguous(), weight, bias, targets, block_rows, bf16_matmul);
}

}  // namespace ddlm
