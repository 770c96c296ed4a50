// The transformer encoder block and its feed-forward sub-layer. Post-LN (BERT, the original
// transformer): x = LN(x + Attn(x)); x = LN(x + FFN(x)). Pre-LN (ViT, GPT-2): x = x + Attn(LN(x));
// x = x + FFN(LN(x)); pre-LN trains stably without warmup tricks, post-LN is what BERT
// checkpoints were trained with. Part of nn/.
#pragma once

#include "nn/attention.h"

namespace cw::nn {

enum class Activation { Gelu, GeluTanh, Relu, Silu };
Variable activate(Activation a, const Variable& x);

// fc2(dropout(act(fc1(x)))): (..., d_model) -> (..., d_model) through d_ff.
class FeedForward : public Module {
 public:
  FeedForward(int64_t d_model, int64_t d_ff, Activation activation = Activation::Gelu, double dropout = 0.0,
              DType dtype = DType::F32);
  Variable forward(const Variable& x) const;
  Activation activation;
  std::shared_ptr<Linear> fc1, fc2;
  std::shared_ptr<Dropout> dropout;
};

struct TransformerLayerOptions {
  int64_t d_model = 384, num_heads = 12, d_ff = 1536;
  double dropout = 0.1;
  double layer_norm_eps = 1e-12;
  Activation activation = Activation::Gelu;
  bool pre_norm = false;  // false: post-LN (BERT); true: pre-LN (ViT)
};

class TransformerEncoderLayer : public Module {
 public:
  explicit TransformerEncoderLayer(const TransformerLayerOptions& o, DType dtype = DType::F32);
  // x (B, T, d_model); key_padding_mask (B, T) nonzero at padding.
  Variable forward(const Variable& x, const Tensor& key_padding_mask = Tensor()) const;

  TransformerLayerOptions options;
  std::shared_ptr<MultiHeadAttention> self_attn;
  std::shared_ptr<FeedForward> ffn;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<Dropout> dropout1, dropout2;
};

}  // namespace cw::nn
