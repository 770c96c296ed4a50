// Multi-head scaled dot-product attention (Vaswani et al. 2017, sec. 3.2):
//   Attention(Q, K, V) = softmax(Q K^T / sqrt(d_head) + mask) V, per head,
// as a function and as a module with separate query/key/value projections and an output
// projection (names: query, key, value, out_proj). Part of nn/.
#pragma once

#include "nn/basic_layers.h"

namespace cw::nn {

// The key padding mask to hand attention: `mask` when some key is padding, else undefined. An
// all-false mask changes nothing but costs a masked_fill over every score, forward and backward
// (2-3% of a full-length Whisper step). Reads the mask back to the host once: call it per batch,
// not per layer. mask (B, S), nonzero = padding.
Tensor padding_or_none(const Tensor& mask);

// q (B, H, T, Dh), k and v (B, H, S, Dh) -> (B, H, T, Dh).
// key_padding_mask: (B, S), nonzero where a key is padding (PyTorch's convention); those keys
//   get the lowest finite score, so a query with at least one real key ignores them exactly.
// attn_mask: additive, broadcastable to (B, H, T, S) (e.g. a causal or relative bias).
// dropout_p applies to the attention probabilities when training.
Variable scaled_dot_product_attention(const Variable& q, const Variable& k, const Variable& v,
                                      const Tensor& key_padding_mask = Tensor(),
                                      const Variable& attn_mask = Variable(), double dropout_p = 0.0,
                                      bool training = false);

class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0, bool bias = true,
                     DType dtype = DType::F32);
  // x (B, T, E) attends to itself; masks as in scaled_dot_product_attention. -> (B, T, E)
  Variable forward(const Variable& x, const Tensor& key_padding_mask = Tensor(),
                   const Variable& attn_mask = Variable()) const;
  // Cross-attention: queries from x (B, T, E), keys and values from memory (B, S, E).
  Variable forward(const Variable& x, const Variable& memory, const Tensor& key_padding_mask,
                   const Variable& attn_mask) const;

  // (B, T, E) -> (B, H, T, Dh) and back.
  Variable split_heads(const Variable& x) const;
  Variable merge_heads(const Variable& x) const;

  int64_t embed_dim, num_heads;
  double dropout;
  std::shared_ptr<Linear> query, key, value, out_proj;
};

}  // namespace cw::nn
