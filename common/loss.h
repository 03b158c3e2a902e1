#ifndef DDLM_COMMON_LOSS_H_
#define DDLM_COMMON_LOSS_H_

// Mean negative log-likelihood of log_softmax(logits) at `targets`: the same value as
// nll_loss(log_softmax(logits, 1), targets), upstream's loss. Its backward writes the
// gradient (softmax(logits) - onehot(targets)) / N in place over the saved
// log-probabilities, instead of materialising a dense NLL gradient and running a
// separate log-softmax backward: for the default LSTM on WikiText-2 that is two
// fewer passes over a 700 x 33,278 float tensor per step.

#include <torch/torch.h>

namespace ddlm {

torch::Tensor CrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace ddlm

#endif  // DDLM_COMMON_LOSS_H_
