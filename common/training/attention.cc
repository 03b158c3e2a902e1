#include "common/training/attention.h"

#include <cmath>
#include <limits>
#include <string>

#include <glog/logging.h>

namespace ddlm {

AffineImpl::AffineImpl(int64_t in, int64_t out) {
  weight = register_parameter("weight", torch::empty({out, in}));
  bias = register_parameter("bias", torch::empty({out}));
}

CausalSelfAttentionImpl::CausalSelfAttentionImpl(int64_t embed_dim, int64_t heads, double dropout)
    : embed_dim_(embed_dim), heads_(heads), dropout_(dropout) {
  CHECK(heads > 0 && embed_dim % heads == 0) << "heads must divide embed_dim";
  // Registered in torch::nn::MultiheadAttention's order (its own parameters, then
  // out_proj), so that parameters() lists them as it did.
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * embed_dim, embed_dim}));
  in_proj_bias = register_parameter("in_proj_bias", torch::empty({3 * embed_dim}));
  out_proj = register_module("out_proj", Affine(embed_dim, embed_dim));
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, LayerCache* cache,
                                               torch::Tensor* weights) {
  // The steps of LibTorch's multi_head_attention_forward for self-attention, in its
  // order (so that the results are the same to the last bit on the same build).
  const int64_t len = x.size(0);
  const int64_t batch = x.size(1);
  const int64_t head_dim = embed_dim_ / heads_;
  std::vector<torch::Tensor> qkv = torch::linear(x, in_proj_weight, in_proj_bias).chunk(3, /*dim=*/-1);
  const double scaling = 1 / std::sqrt(static_cast<double>(head_dim));
  torch::Tensor q = qkv[0] * scaling;
  q = q.contiguous().view({len, batch * heads_, head_dim}).transpose(0, 1);
  torch::Tensor k = qkv[1].contiguous().view({-1, batch * heads_, head_dim}).transpose(0, 1);
  torch::Tensor v = qkv[2].contiguous().view({-1, batch * heads_, head_dim}).transpose(0, 1);
  if (cache != nullptr) {
    if (cache->keys.defined()) {
      k = torch::cat({cache->keys, k}, /*dim=*/1);
      v = torch::cat({cache->values, v}, /*dim=*/1);
    }
    cache->keys = k;
    cache->values = v;
  }
  const int64_t keys = k.size(1);
  torch::Tensor scores = torch::bmm(q, k.transpose(1, 2));  // [batch * heads, len, keys]
  if (mask.defined()) scores += mask.unsqueeze(0);
  scores = torch::softmax(scores, /*dim=*/-1);
  if (weights != nullptr) *weights = scores.view({batch, heads_, len, keys});
  scores = torch::dropout(scores, dropout_, is_training());
  torch::Tensor out = torch::bmm(scores, v);
  out = out.transpose(0, 1).contiguous().view({len, batch, embed_dim_});
  return out_proj(out);
}

EncoderBlockImpl::EncoderBlockImpl(int64_t embed_dim, int64_t heads, int64_t feedforward, double dropout) {
  // torch::nn::TransformerEncoderLayer's names and order.
  self_attn = register_module("self_attn", CausalSelfAttention(embed_dim, heads, dropout));
  linear1_ = register_module("linear1", Affine(embed_dim, feedforward));
  dropout_ = register_module("dropout", torch::nn::Dropout(dropout));
  linear2_ = register_module("linear2", Affine(feedforward, embed_dim));
  norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({embed_dim})));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({embed_dim})));
  dropout1_ = register_module("dropout1", torch::nn::Dropout(dropout));
  dropout2_ = register_module("dropout2", torch::nn::Dropout(dropout));
}

torch::Tensor EncoderBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, LayerCache* cache,
                                        torch::Tensor* weights) {
  torch::Tensor attended = self_attn(x, mask, cache, weights);
  torch::Tensor out = norm1_(x + dropout1_(attended));
  torch::Tensor fed = linear2_(dropout_(torch::relu(linear1_(out))));
  return norm2_(out + dropout2_(fed));
}

CausalEncoderImpl::CausalEncoderImpl(int64_t embed_dim, int64_t heads, int64_t feedforward, int64_t layers,
                                     double dropout)
    : heads_(heads) {
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) {
    blocks_.push_back(EncoderBlock(embed_dim, heads, feedforward, dropout));
    layers_->push_back(blocks_.back());
  }
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({embed_dim})));
}

torch::Tensor CausalEncoderImpl::forward(const torch::Tensor& x, const torch::Tensor& mask,
                                         std::vector<LayerCache>* caches, std::vector<torch::Tensor>* weights) {
  if (caches != nullptr) caches->resize(blocks_.size());
  if (weights != nullptr) weights->assign(blocks_.size(), torch::Tensor());
  torch::Tensor out = x;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    out = blocks_[i](out, mask, caches != nullptr ? &(*caches)[i] : nullptr,
                     weights != nullptr ? &(*weights)[i] : nullptr);
  }
  return norm_(out);
}

void CausalEncoderImpl::CopyFrom(torch::nn::Module& reference) {
  torch::NoGradGuard no_grad;
  auto theirs = reference.named_parameters(/*recurse=*/true);
  auto ours = named_parameters(/*recurse=*/true);
  CHECK_EQ(theirs.size(), ours.size()) << "the reference encoder has another number of parameters";
  for (auto& item : ours) {
    const torch::Tensor* source = theirs.find(item.key());
    CHECK(source != nullptr) << "the reference encoder has no parameter " << item.key();
    CHECK(source->sizes() == item.value().sizes()) << "parameter " << item.key() << " differs in shape";
    item.value().copy_(*source);
  }
}

torch::Tensor CausalMask(int64_t len, int64_t cached, const torch::Device& device) {
  return torch::triu(torch::full({len, cached + len}, -std::numeric_limits<float>::infinity(),
                                 torch::TensorOptions(device).dtype(torch::kFloat)),
                     cached + 1);
}

}  // namespace ddlm
