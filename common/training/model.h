#ifndef DDLM_COMMON_TRAINING_MODEL_H_
#define DDLM_COMMON_TRAINING_MODEL_H_

// word_language_model's models (model.py) in LibTorch:
//  - RNNModel: embedding -> dropout -> RNN_TANH | RNN_RELU | LSTM | GRU -> dropout ->
//    linear decoder; embedding and decoder weights uniform(-0.1, 0.1), decoder bias 0;
//    optionally tied embedding/decoder weights (nhid == emsize). The recurrent layers
//    run one LibTorch (cuDNN on a GPU) layer at a time, with the dropout between them
//    drawn from the device's generator: what a multi-layer RNN computes, but resumable
//    bit for bit on a GPU too (model.cc, RecurrentStackImpl).
//  - TransformerModel: embedding * sqrt(emsize) -> sinusoidal positional encoding
//    (with the configured dropout) -> encoder-only Transformer with a causal mask
//    (upstream's nn.Transformer encoder: model.layer_dropout, 0.1 by default, a final
//    LayerNorm, xavier init) -> linear decoder.
// Both return log-probabilities [seq_len * batch, ntoken]. A module is used from one
// thread at a time (LibTorch modules are not thread-safe).

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/base/model_size.h"  // ParameterCount, for the model it builds.
#include "common/training/attention.h"
#include "proto/config.pb.h"

namespace ddlm {

// Recurrent state carried between bptt windows: {h} for RNN/GRU, {h, c} for LSTM,
// empty for the Transformer.
using RecurrentState = std::vector<torch::Tensor>;

// What incremental decoding carries from one call to the next (batch 1): the recurrent
// state for RNN/GRU/LSTM, each layer's keys and values for the Transformer.
struct DecodeState {
  RecurrentState recurrent;
  std::vector<LayerCache> layers;
  // Positions seen so far (the Transformer's next position is this one).
  int64_t positions = 0;
};

class LanguageModelImpl : public torch::nn::Module {
 public:
  ~LanguageModelImpl() override = default;

  // What the linear decoder maps to scores: Logits = linear(hidden, weight, bias).
  struct DecoderInput {
    torch::Tensor hidden;  // [seq_len * batch, nhid (emsize for the Transformer)]
    torch::Tensor weight;  // [ntoken, nhid]: the decoder's (or, tied, the embedding's)
    torch::Tensor bias;    // [ntoken]
  };

  // The decoder's input for input [seq_len, batch], and its parameters; updates `state`
  // in place for recurrent models. Training feeds this to LinearCrossEntropy
  // (common/training/loss.h), which never materialises the whole score matrix.
  virtual DecoderInput Features(const torch::Tensor& input, RecurrentState* state) = 0;

  // Unnormalised scores [seq_len * batch, ntoken] for input [seq_len, batch]; updates
  // `state` in place for recurrent models.
  torch::Tensor Logits(const torch::Tensor& input, RecurrentState* state) {
    DecoderInput d = Features(input, state);
    return torch::linear(d.hidden, d.weight, d.bias);
  }

  // log_softmax of Logits.
  torch::Tensor Forward(const torch::Tensor& input, RecurrentState* state) {
    return torch::log_softmax(Logits(input, state), /*dim=*/1);
  }

  // With `sparse`, the embedding's gradient is a sparse tensor of the rows a batch used
  // (at most seq_len * batch of ntoken) instead of a dense [ntoken, emsize] one: for SGD
  // on the CPU, where nothing else needs it dense, it saves zeroing, norming and adding
  // the whole matrix every step. Off by default.
  virtual void set_sparse_embedding_gradient(bool sparse) = 0;

  // Positions in parameters() of the parameters whose gradient is zero outside the rows
  // of the tokens a batch used: the input embedding, unless it is tied to the decoder
  // (whose gradient touches every row). The data-parallel reducer all-reduces only the
  // rows some rank's batch touched (worker/gradient_reducer.h).
  std::vector<size_t> RowSparseGradientParameters();

  // Zero state for `batch` streams.
  virtual RecurrentState InitState(int64_t batch) const = 0;

  // Incremental decoding of one stream, in eval mode: unnormalised scores [len, ntoken]
  // for `input` [len, 1] as the continuation of what `state` (from InitDecodeState) has
  // seen, which it then includes. Equal (to float rounding) to Logits over everything
  // seen at once: recurrent models carry their state; the Transformer attends from the
  // new positions to its cached keys and values, so a word costs one position. With
  // `last_only`, only the last position's scores [1, ntoken] (reading a long prompt
  // then costs no decoder product per word).
  virtual torch::Tensor DecodeLogits(const torch::Tensor& input, DecodeState* state, bool last_only = false) = 0;
  DecodeState InitDecodeState() const { return {InitState(1), {}, 0}; }

  // The Transformer's attention weights for `input` [len, 1], in eval mode: one
  // [heads, len, len] tensor per layer, rows summing to 1, zero above the diagonal (the
  // causal mask). FAILED_PRECONDITION for recurrent models, which have none.
  virtual absl::StatusOr<std::vector<torch::Tensor>> AttentionWeights(const torch::Tensor& input);

  virtual bool is_recurrent() const = 0;
  int64_t ntoken() const { return ntoken_; }

 protected:
  explicit LanguageModelImpl(int64_t ntoken) : ntoken_(ntoken) {}
  // The input embedding's weight [ntoken, emsize], and whether the decoder uses it too.
  virtual torch::Tensor embedding_weight() const = 0;
  virtual bool tied() const = 0;

 private:
  int64_t ntoken_;
};

// Detaches every tensor of `state` from its autograd history (repackage_hidden).
void DetachState(RecurrentState* state);

// Builds the model named by `config` for a vocabulary of `ntoken` words, initialised
// from LibTorch's default generator (seed it first for reproducibility).
// INVALID_ARGUMENT for an impossible config (e.g. tied with nhid != emsize).
absl::StatusOr<std::shared_ptr<LanguageModelImpl>> BuildModel(const ModelConfig& config, int64_t ntoken);

// The name a parameter had in checkpoints written before the recurrent layers became one
// module per layer: "rnn.K.<weight>_l0" was "rnn.<weight>_lK". Any other name is
// returned as it is. RestoreModel reads such checkpoints through it.
std::string FormerParameterName(const std::string& name);

// Upper bound on the Transformer's sequence length (positional-encoding table size).
inline constexpr int64_t kMaxTransformerLength = 5000;

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_MODEL_H_
