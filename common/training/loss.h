#ifndef DDLM_COMMON_TRAINING_LOSS_H_
#define DDLM_COMMON_TRAINING_LOSS_H_

// Losses of the language models: the mean negative log-likelihood of
// log_softmax(logits) at `targets`, upstream's nll_loss(log_softmax(...)).
//
// CrossEntropy takes the logits. Its backward writes the gradient
// (softmax(logits) - onehot(targets)) / N in place over the saved log-probabilities,
// instead of materialising a dense NLL gradient and running a separate log-softmax
// backward.
//
// LinearCrossEntropy takes the decoder's input and parameters instead, and computes
// the same loss as CrossEntropy(linear(hidden, weight, bias), targets) with far fewer
// passes over the score matrix in memory (for the default LSTM on WikiText-2,
// 700 x 33,278 floats, 93 MB: far more than the caches hold). The GEMM writes the
// scores once; then each block of `block_rows` rows is read once and, while it is in
// cache, gets the bias, its maximum, its target scores, exp(scores - max) written in
// place (E), the row sums and the column sums the bias gradient needs. Backward uses E
// as it is: the softmax's row scaling 1/sum and the loss's 1/N move onto the small
// matrices (hidden, and the [N, nhid] product), and the one-hot part of the gradient is
// added as row updates (N rows, not N x ntoken). So besides the three GEMMs, which read
// or write it anyway, the score matrix crosses memory twice (read, write back E), where
// linear + CrossEntropy make about eight passes over it.
//
// With `bf16_matmul` the three GEMMs run in bfloat16 (the scores and E are kept in
// bfloat16, half the memory), while the softmax, the loss and every gradient returned
// stay float32: what autocast to bfloat16 does to linear + CrossEntropy.
//
// The fused path runs on the CPU (float32 or bfloat16 tensors); anything else (CUDA)
// takes linear + CrossEntropy, the same value.

#include <cstdint>

#include <torch/torch.h>

namespace ddlm {

torch::Tensor CrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets);

// hidden [N, H], weight [V, H], bias [V], targets [N] (int64, in [0, V)). `block_rows`
// < 1 takes the unfused path (for comparisons).
inline constexpr int64_t kDefaultLossBlockRows = 8;
torch::Tensor LinearCrossEntropy(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& bias,
                                 const torch::Tensor& targets, int64_t block_rows = kDefaultLossBlockRows,
                                 bool bf16_matmul = false);

// The summed NLL (float64, 0-dim, no gradient) of the same scores: evaluation's loss,
// through the fused forward where LinearCrossEntropy would take it.
torch::Tensor LinearNllSum(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& bias,
                           const torch::Tensor& targets, bool bf16_matmul = false);

// True when LinearCrossEntropy takes its fused path for these tensors: on the CPU, in
// float32 or bfloat16.
bool LinearCrossEntropyIsFused(const torch::Tensor& hidden, const torch::Tensor& weight);

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_LOSS_H_
