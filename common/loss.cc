#include "common/loss.h"

namespace ddlm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class CrossEntropyFunction : public torch::autograd::Function<CrossEntropyFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& targets) {
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

}  // namespace

torch::Tensor CrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  // Under autocast the logits come in bfloat16: the softmax and the loss are taken in
  // float32 (the cast is part of the graph, so its gradient goes back as bfloat16).
  if (logits.scalar_type() != torch::kFloat) {
    return CrossEntropyFunction::apply(logits.to(torch::kFloat), targets);
  }
  return CrossEntropyFunction::apply(logits, targets);
}

}  // namespace ddlm
