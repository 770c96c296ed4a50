// FeedForward and TransformerEncoderLayer (see transformer.h).
#include "nn/transformer.h"

#include "autograd/functions.h"

namespace cw::nn {

Variable activate(Activation a, const Variable& x) {
  switch (a) {
    case Activation::Gelu: return ag::gelu(x);
    case Activation::GeluTanh: return ag::gelu(x, ops::GeluApprox::Tanh);
    case Activation::Relu: return ag::relu(x);
    case Activation::Silu: return ag::silu(x);
  }
  return x;
}

FeedForward::FeedForward(int64_t d_model, int64_t d_ff, Activation act, double p, DType dtype)
    : activation(act) {
  fc1 = register_module("fc1", std::make_shared<Linear>(d_model, d_ff, true, dtype));
  fc2 = register_module("fc2", std::make_shared<Linear>(d_ff, d_model, true, dtype));
  dropout = register_module("dropout", std::make_shared<Dropout>(p));
}

Variable FeedForward::forward(const Variable& x) const {
  return fc2->forward(dropout->forward(activate(activation, fc1->forward(x))));
}

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerLayerOptions& o, DType dtype) : options(o) {
  self_attn = register_module(
      "self_attn", std::make_shared<MultiHeadAttention>(o.d_model, o.num_heads, o.dropout, true, dtype));
  ffn = register_module("ffn",
                        std::make_shared<FeedForward>(o.d_model, o.d_ff, o.activation, o.dropout, dtype));
  norm1 =
      register_module("norm1", std::make_shared<LayerNorm>(Shape{o.d_model}, o.layer_norm_eps, true, dtype));
  norm2 =
      register_module("norm2", std::make_shared<LayerNorm>(Shape{o.d_model}, o.layer_norm_eps, true, dtype));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout));
}

Variable TransformerEncoderLayer::forward(const Variable& x, const Tensor& key_padding_mask) const {
  if (options.pre_norm) {
    Variable h = x + dropout1->forward(self_attn->forward(norm1->forward(x), key_padding_mask));
    return h + dropout2->forward(ffn->forward(norm2->forward(h)));
  }
  Variable h = norm1->forward(x + dropout1->forward(self_attn->forward(x, key_padding_mask)));
  return norm2->forward(h + dropout2->forward(ffn->forward(h)));
}

}  // namespace cw::nn
