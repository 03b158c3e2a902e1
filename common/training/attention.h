#ifndef DDLM_COMMON_TRAINING_ATTENTION_H_
#define DDLM_COMMON_TRAINING_ATTENTION_H_

// ddlm's own causal Transformer encoder: the computation of LibTorch's
// torch::nn::TransformerEncoder (post-norm layers: multi-head scaled dot-product
// self-attention, add & LayerNorm, ReLU feed-forward, add & LayerNorm; a final
// LayerNorm), op for op and with the same parameter names, so that it loads the
// checkpoints written while ddlm used LibTorch's module and gives their outputs (tested
// to 1e-6 against it in attention_test). What LibTorch's module cannot do, this one does:
//  - return each layer's attention weights [batch, heads, queries, keys] on request;
//  - decode incrementally: a LayerCache per layer holds the keys and values of the
//    positions already seen, so a new position costs one query against them instead of
//    a pass over the whole context.
// Dropout is drawn in LibTorch's order (attention weights, then after attention, inside
// the feed-forward, after it), so training draws the same masks for the same seed.
//
// Layout is [sequence, batch, features], as LibTorch's. A module is used from one thread
// at a time.

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace ddlm {

// The keys and values [batch * heads, positions, head_dim] of the positions one
// attention layer has seen; undefined before the first.
struct LayerCache {
  torch::Tensor keys;
  torch::Tensor values;
  int64_t positions() const { return keys.defined() ? keys.size(1) : 0; }
};

// weight [out, in] and bias [out], as torch::nn::Linear names them, created
// uninitialised: the encoder's weights come from CausalEncoderImpl::CopyFrom.
class AffineImpl : public torch::nn::Module {
 public:
  AffineImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x) { return torch::linear(x, weight, bias); }
  torch::Tensor weight;
  torch::Tensor bias;
};
TORCH_MODULE(Affine);

class CausalSelfAttentionImpl : public torch::nn::Module {
 public:
  CausalSelfAttentionImpl(int64_t embed_dim, int64_t heads, double dropout);

  // x [len, batch, embed_dim]; `mask` additive [len, cached + len] (-inf where a query
  // may not look), or undefined for none. With `cache`, the keys and values of x are
  // appended to it and the queries attend to all of them. With `weights`, it receives
  // the softmax weights [batch, heads, len, cached + len] (before dropout).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, LayerCache* cache, torch::Tensor* weights);

  int64_t heads() const { return heads_; }

  torch::Tensor in_proj_weight;  // [3 * embed_dim, embed_dim]: queries, keys, values.
  torch::Tensor in_proj_bias;    // [3 * embed_dim]
  Affine out_proj{nullptr};

 private:
  int64_t embed_dim_;
  int64_t heads_;
  double dropout_;
};
TORCH_MODULE(CausalSelfAttention);

class EncoderBlockImpl : public torch::nn::Module {
 public:
  EncoderBlockImpl(int64_t embed_dim, int64_t heads, int64_t feedforward, double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, LayerCache* cache, torch::Tensor* weights);

  CausalSelfAttention self_attn{nullptr};

 private:
  Affine linear1_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  Affine linear2_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr};
  torch::nn::LayerNorm norm2_{nullptr};
  torch::nn::Dropout dropout1_{nullptr};
  torch::nn::Dropout dropout2_{nullptr};
};
TORCH_MODULE(EncoderBlock);

class CausalEncoderImpl : public torch::nn::Module {
 public:
  CausalEncoderImpl(int64_t embed_dim, int64_t heads, int64_t feedforward, int64_t layers, double dropout);

  // x [len, batch, embed_dim] -> [len, batch, embed_dim]. `mask` as for
  // CausalSelfAttentionImpl. `caches`: null, or one per layer (incremental decoding).
  // `weights`: null, or receives one [batch, heads, len, cached + len] per layer.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, std::vector<LayerCache>* caches = nullptr,
                        std::vector<torch::Tensor>* weights = nullptr);

  // Copies every parameter of `reference` (a torch::nn::TransformerEncoder of the same
  // shape) by name; CHECK-fails on a name or shape that does not match, which is a bug.
  void CopyFrom(torch::nn::Module& reference);

  int64_t num_layers() const { return static_cast<int64_t>(blocks_.size()); }
  int64_t heads() const { return heads_; }

 private:
  torch::nn::ModuleList layers_{nullptr};
  std::vector<EncoderBlock> blocks_;
  torch::nn::LayerNorm norm_{nullptr};
  int64_t heads_;
};
TORCH_MODULE(CausalEncoder);

// The additive causal mask for `len` new positions after `cached` ones: [len, cached +
// len], 0 where query i may see key j (j <= cached + i), -inf elsewhere.
torch::Tensor CausalMask(int64_t len, int64_t cached, const torch::Device& device);

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_ATTENTION_H_
