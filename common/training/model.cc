#include "common/training/model.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/config.h"
#include "common/training/autocast.h"

namespace ddlm {
namespace {

constexpr double kInitRange = 0.1;

// The recurrent layers of an RNNModel, one single-layer LibTorch RNN module per layer,
// with the inter-layer dropout drawn here by torch::dropout from the device's own
// generator (the one checkpoints save). A multi-layer cuDNN RNN would draw that dropout
// inside cuDNN, from a state cuDNN reseeds with an extra draw after every generator
// restore, so a resumed GPU run would not repeat an uninterrupted one; one layer per
// call leaves cuDNN no dropout to do. On the CPU this computes exactly what LibTorch's
// multi-layer RNN computes (each layer, then dropout on all but the last layer's
// output, from the same generator in the same order; model_test checks it bit for
// bit), and it draws the same initial weights. Each layer keeps its weights flat for
// cuDNN itself (LibTorch's RNN modules re-flatten when moved).
// Parameter names: rnn.K.weight_ih_l0 is what rnn.weight_ih_lK was (FormerParameterName).
class RecurrentStackImpl : public torch::nn::Module {
 public:
  RecurrentStackImpl(ModelType type, int64_t input_size, int64_t hidden_size, int64_t layers, double dropout)
      : type_(type), dropout_(layers > 1 ? dropout : 0.0) {
    for (int64_t l = 0; l < layers; ++l) {
      const int64_t in = l == 0 ? input_size : hidden_size;
      const std::string name = std::to_string(l);
      switch (type) {
        case LSTM:
          lstm_.push_back(register_module(name, torch::nn::LSTM(torch::nn::LSTMOptions(in, hidden_size))));
          break;
        case GRU: gru_.push_back(register_module(name, torch::nn::GRU(torch::nn::GRUOptions(in, hidden_size)))); break;
        default: {
          torch::nn::RNNOptions options(in, hidden_size);
          if (type == RNN_RELU) {
            options.nonlinearity(torch::kReLU);
          } else {
            options.nonlinearity(torch::kTanh);
          }
          rnn_.push_back(register_module(name, torch::nn::RNN(options)));
        }
      }
    }
  }

  // input [seq_len, batch, input_size]; `state` as RecurrentState ([layers, batch,
  // hidden] each), replaced by the final states. Returns the last layer's output.
  torch::Tensor Forward(torch::Tensor input, RecurrentState* state) {
    const int64_t layers = static_cast<int64_t>(type_ == LSTM  ? lstm_.size()
                                                : type_ == GRU ? gru_.size()
                                                               : rnn_.size());
    std::vector<torch::Tensor> h(layers), c(type_ == LSTM ? layers : 0);
    for (int64_t l = 0; l < layers; ++l) {
      if (l > 0 && dropout_ > 0 && is_training()) input = torch::dropout(input, dropout_, /*train=*/true);
      torch::Tensor h0 = (*state)[0].narrow(0, l, 1);
      if (type_ == LSTM) {
        auto out = ForwardLstm(*lstm_[l], input, h0, (*state)[1].narrow(0, l, 1));
        input = std::get<0>(out);
        h[l] = std::get<0>(std::get<1>(out));
        c[l] = std::get<1>(std::get<1>(out));
      } else if (type_ == GRU) {
        std::tie(input, h[l]) = gru_[l]->forward(input, h0);
      } else {
        std::tie(input, h[l]) = rnn_[l]->forward(input, h0);
      }
    }
    (*state)[0] = layers == 1 ? h[0] : torch::cat(h, 0);
    if (type_ == LSTM) (*state)[1] = layers == 1 ? c[0] : torch::cat(c, 0);
    return input;
  }

 private:
  static std::tuple<torch::Tensor, std::tuple<torch::Tensor, torch::Tensor>> ForwardLstm(torch::nn::LSTMImpl& lstm,
                                                                                         const torch::Tensor& input,
                                                                                         const torch::Tensor& h0,
                                                                                         const torch::Tensor& c0) {
    if (!input.is_cuda() && CpuAutocastEnabled() && !CpuBf16LstmWorks()) {
      // No bfloat16 LSTM on this CPU (autocast.h): this layer in float32.
      CpuAutocastPause pause;
      return lstm.forward(input.to(torch::kFloat), std::make_tuple(h0.to(torch::kFloat), c0.to(torch::kFloat)));
    }
    return lstm.forward(input, std::make_tuple(h0, c0));
  }

  ModelType type_;
  double dropout_;
  std::vector<torch::nn::LSTM> lstm_;
  std::vector<torch::nn::GRU> gru_;
  std::vector<torch::nn::RNN> rnn_;
};
TORCH_MODULE(RecurrentStack);

class RNNModelImpl : public LanguageModelImpl {
 public:
  RNNModelImpl(const ModelConfig& c, int64_t ntoken)
      : LanguageModelImpl(ntoken), type_(c.type()), nhid_(c.nhid()), nlayers_(c.nlayers()) {
    encoder_ = register_module("encoder", torch::nn::Embedding(ntoken, c.emsize()));
    drop_ = register_module("drop", torch::nn::Dropout(c.dropout()));
    rnn_ = register_module("rnn", RecurrentStack(type_, c.emsize(), c.nhid(), c.nlayers(), c.dropout()));
    // The decoder's parameters live here rather than in a Linear module so that a
    // tied model registers the shared weight exactly once (as "encoder.weight").
    if (!c.tied()) {
      decoder_weight_ = register_parameter("decoder_weight", torch::empty({ntoken, c.nhid()}));
    }
    decoder_bias_ = register_parameter("decoder_bias", torch::empty({ntoken}));
    torch::NoGradGuard no_grad;
    encoder_->weight.uniform_(-kInitRange, kInitRange);
    if (!c.tied()) decoder_weight_.uniform_(-kInitRange, kInitRange);
    decoder_bias_.zero_();
  }

  DecoderInput Features(const torch::Tensor& input, RecurrentState* state) override {
    torch::Tensor emb = drop_(encoder_(input));
    torch::Tensor output = rnn_->Forward(emb, state);
    output = drop_(output);
    const torch::Tensor& weight = decoder_weight_.defined() ? decoder_weight_ : encoder_->weight;
    return {output.reshape({-1, nhid_}), weight, decoder_bias_};
  }

  void set_sparse_embedding_gradient(bool sparse) override { encoder_->options.sparse(sparse); }

  torch::Tensor DecodeLogits(const torch::Tensor& input, DecodeState* state, bool last_only = false) override {
    state->positions += input.size(0);
    DecoderInput d = Features(input, &state->recurrent);
    torch::Tensor hidden = last_only ? d.hidden.narrow(0, d.hidden.size(0) - 1, 1) : d.hidden;
    return torch::linear(hidden, d.weight, d.bias);
  }

  RecurrentState InitState(int64_t batch) const override {
    // On the model's device and in its dtype.
    const torch::TensorOptions options = encoder_->weight.options().requires_grad(false);
    RecurrentState state{torch::zeros({nlayers_, batch, nhid_}, options)};
    if (type_ == LSTM) state.push_back(torch::zeros({nlayers_, batch, nhid_}, options));
    return state;
  }

  bool is_recurrent() const override { return true; }

 protected:
  torch::Tensor embedding_weight() const override { return encoder_->weight; }
  bool tied() const override { return !decoder_weight_.defined(); }

 private:
  ModelType type_;
  int64_t nhid_;
  int64_t nlayers_;
  torch::nn::Embedding encoder_{nullptr};
  torch::nn::Dropout drop_{nullptr};
  RecurrentStack rnn_{nullptr};
  torch::Tensor decoder_weight_;
  torch::Tensor decoder_bias_;
};

class TransformerModelImpl : public LanguageModelImpl {
 public:
  TransformerModelImpl(const ModelConfig& c, int64_t ntoken) : LanguageModelImpl(ntoken), emsize_(c.emsize()) {
    const double layer_dropout = c.has_layer_dropout() ? c.layer_dropout() : kDefaultTransformerLayerDropout;
    encoder_ = register_module("input_emb", torch::nn::Embedding(ntoken, c.emsize()));
    pos_drop_ = register_module("pos_drop", torch::nn::Dropout(c.dropout()));
    // As upstream, whose TransformerModel subclasses nn.Transformer without passing
    // its dropout on: the encoder layers use nn.Transformer's dropout of 0.1 unless
    // model.layer_dropout says otherwise (the configured dropout applies to the
    // positional encoding), the stack ends in a LayerNorm, and every matrix in it
    // starts xavier-uniform.
    transformer_ =
        register_module("encoder", CausalEncoder(c.emsize(), c.nhead(), c.nhid(), c.nlayers(), layer_dropout));
    {
      // The weights LibTorch's own encoder would start from, drawn as it drew them
      // (construction, then xavier-uniform on every matrix), so that a seed gives the
      // same model as before ddlm had its own encoder. CausalEncoder draws nothing.
      torch::nn::TransformerEncoder reference(
          torch::nn::TransformerEncoderOptions(torch::nn::TransformerEncoderLayerOptions(c.emsize(), c.nhead())
                                                   .dim_feedforward(c.nhid())
                                                   .dropout(layer_dropout),
                                               c.nlayers())
              .norm(torch::nn::AnyModule(
                  torch::nn::LayerNorm(torch::nn::LayerNormOptions({static_cast<int64_t>(c.emsize())})))));
      torch::NoGradGuard no_grad;
      for (auto& p : reference->parameters()) {
        if (p.dim() > 1) torch::nn::init::xavier_uniform_(p);
      }
      transformer_->CopyFrom(*reference);
    }
    decoder_ = register_module("decoder", torch::nn::Linear(c.emsize(), ntoken));
    // Sinusoidal table [max_len, 1, emsize]: even columns sin, odd columns cos.
    torch::Tensor position = torch::arange(0, kMaxTransformerLength, torch::kFloat).unsqueeze(1);
    torch::Tensor div = torch::exp(torch::arange(0, c.emsize(), 2, torch::kFloat) * (-std::log(10000.0) / c.emsize()));
    torch::Tensor pe = torch::zeros({kMaxTransformerLength, c.emsize()});
    pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 2)},
                  torch::sin(position * div));
    pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, torch::indexing::None, 2)},
                  torch::cos(position * div).narrow(1, 0, c.emsize() / 2));
    pe_ = register_buffer("pe", pe.unsqueeze(1));
    torch::NoGradGuard no_grad;
    encoder_->weight.uniform_(-kInitRange, kInitRange);
    decoder_->weight.uniform_(-kInitRange, kInitRange);
    decoder_->bias.zero_();
  }

  DecoderInput Features(const torch::Tensor& input, RecurrentState* /*state*/) override {
    const int64_t len = input.size(0);
    if (!mask_.defined() || mask_.size(0) != len || mask_.device() != input.device()) {
      // Position i may attend to positions <= i only.
      mask_ = CausalMask(len, 0, input.device());
    }
    torch::Tensor output = transformer_->forward(Embed(input, 0), mask_);
    return {output.reshape({-1, emsize_}), decoder_->weight, decoder_->bias};
  }

  torch::Tensor DecodeLogits(const torch::Tensor& input, DecodeState* state, bool last_only = false) override {
    const int64_t len = input.size(0);
    const int64_t cached = state->positions;
    torch::Tensor output =
        transformer_->forward(Embed(input, cached), CausalMask(len, cached, input.device()), &state->layers);
    state->positions += len;
    output = output.reshape({-1, emsize_});
    return decoder_(last_only ? output.narrow(0, len - 1, 1) : output);
  }

  absl::StatusOr<std::vector<torch::Tensor>> AttentionWeights(const torch::Tensor& input) override {
    std::vector<torch::Tensor> weights;
    transformer_->forward(Embed(input, 0), CausalMask(input.size(0), 0, input.device()), nullptr, &weights);
    for (torch::Tensor& w : weights) w = w.select(0, 0);  // Batch 1: [heads, len, len].
    return weights;
  }

  void set_sparse_embedding_gradient(bool sparse) override { encoder_->options.sparse(sparse); }

  RecurrentState InitState(int64_t /*batch*/) const override { return {}; }
  bool is_recurrent() const override { return false; }

 private:
  // The scaled embedding of `input` at positions first.. with its positional encoding.
  torch::Tensor Embed(const torch::Tensor& input, int64_t first) {
    torch::Tensor src = encoder_(input) * std::sqrt(static_cast<double>(emsize_));
    return pos_drop_(src + pe_.narrow(0, first, input.size(0)));
  }

 protected:
  torch::Tensor embedding_weight() const override { return encoder_->weight; }
  bool tied() const override { return false; }

 private:
  int64_t emsize_;
  torch::nn::Embedding encoder_{nullptr};
  torch::nn::Dropout pos_drop_{nullptr};
  CausalEncoder transformer_{nullptr};
  torch::nn::Linear decoder_{nullptr};
  torch::Tensor pe_;
  torch::Tensor mask_;
};

}  // namespace

absl::StatusOr<std::vector<torch::Tensor>> LanguageModelImpl::AttentionWeights(const torch::Tensor& /*input*/) {
  return absl::FailedPreconditionError(
      "attention weights exist only for TRANSFORMER models; a recurrent model offers its next-word distributions "
      "instead (ScoreText with top_n)");
}

std::vector<size_t> LanguageModelImpl::RowSparseGradientParameters() {
  if (tied()) return {};
  const torch::Tensor embedding = embedding_weight();
  const std::vector<torch::Tensor> params = parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].unsafeGetTensorImpl() == embedding.unsafeGetTensorImpl()) return {i};
  }
  return {};
}

std::string FormerParameterName(const std::string& name) {
  // rnn.<K>.<weight>_l0 -> rnn.<weight>_l<K>
  constexpr absl::string_view kPrefix = "rnn.";
  constexpr absl::string_view kSuffix = "_l0";
  absl::string_view rest(name);
  if (!absl::ConsumePrefix(&rest, kPrefix) || !absl::EndsWith(rest, kSuffix)) return name;
  const size_t dot = rest.find('.');
  if (dot == absl::string_view::npos || dot == 0) return name;
  const absl::string_view layer = rest.substr(0, dot);
  if (!std::all_of(layer.begin(), layer.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) return name;
  absl::string_view weight = rest.substr(dot + 1);
  weight.remove_suffix(kSuffix.size());
  return absl::StrCat(kPrefix, weight, "_l", layer);
}

void DetachState(RecurrentState* state) {
  for (torch::Tensor& t : *state) t = t.detach();
}

absl::StatusOr<std::shared_ptr<LanguageModelImpl>> BuildModel(const ModelConfig& config, int64_t ntoken) {
  if (ntoken < 1) return absl::InvalidArgumentError("the vocabulary is empty");
  if (config.type() == TRANSFORMER) {
    if (config.emsize() % config.nhead() != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.nhead (", config.nhead(), ") must divide model.emsize (", config.emsize(), ")"));
    }
    if (config.tied()) {
      return absl::InvalidArgumentError("model.tied is not supported by the TRANSFORMER model");
    }
    return std::shared_ptr<LanguageModelImpl>(std::make_shared<TransformerModelImpl>(config, ntoken));
  }
  switch (config.type()) {
    case RNN_TANH:
    case RNN_RELU:
    case LSTM:
    case GRU: break;
    default: return absl::InvalidArgumentError(absl::StrCat("model.type ", config.type(), " is unknown"));
  }
  if (config.tied() && config.nhid() != config.emsize()) {
    return absl::InvalidArgumentError(
        absl::StrCat("when using the tied flag, nhid must be equal to emsize: model.tied needs model.nhid == "
                     "model.emsize, got nhid ",
                     config.nhid(), " and emsize ", config.emsize()));
  }
  return std::shared_ptr<LanguageModelImpl>(std::make_shared<RNNModelImpl>(config, ntoken));
}

}  // namespace ddlm
