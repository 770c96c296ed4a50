// Multi-head attention (see attention.h).
#include "nn/attention.h"

#include <cmath>
#include <limits>

#include "autograd/functions.h"

namespace cw::nn {

Variable scaled_dot_product_attention(const Variable& q, const Variable& k, const Variable& v,
                                      const Tensor& key_padding_mask, const Variable& attn_mask,
                                      double dropout_p, bool training) {
  CW_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, ShapeError,
           "attention: q, k, v must be (B, H, T, Dh), got ", shape_str(q.shape()), ", ", shape_str(k.shape()),
           ", ", shape_str(v.shape()));
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  // Scaling q (T x Dh) rather than the scores (T x S) is the cheaper place when S >= Dh.
  Variable scores = ag::matmul(q * scale, ag::transpose(k, -1, -2));  // (B, H, T, S)
  if (attn_mask.defined()) scores = scores + attn_mask;
  if (key_padding_mask.defined()) {
    const int64_t B = k.size(0), S = k.size(2);
    CW_CHECK(key_padding_mask.shape() == (Shape{B, S}), ShapeError, "attention: key_padding_mask ",
             shape_str(key_padding_mask.shape()), " should be (batch, keys) = (", B, ", ", S, ")");
    const double lowest = q.dtype() == DType::F32 ? std::numeric_limits<float>::lowest()
                                                  : std::numeric_limits<double>::lowest();
    scores = ag::masked_fill(scores, key_padding_mask.view({B, 1, 1, S}), lowest);
  }
  Variable probs = ag::dropout(ag::softmax(scores, -1), dropout_p, training);
  return ag::matmul(probs, v);  // (B, H, T, Dh)
}

Tensor padding_or_none(const Tensor& mask) {
  if (!mask.defined() || mask.numel() == 0) return mask;
  return ops::amax(mask.to(DType::F32)).to(Device::cpu()).item() != 0 ? mask : Tensor();
}

MultiHeadAttention::MultiHeadAttention(int64_t embed_dim_, int64_t num_heads_, double dropout_, bool bias,
                                       DType dtype)
    : embed_dim(embed_dim_), num_heads(num_heads_), dropout(dropout_) {
  CW_CHECK(num_heads > 0 && embed_dim % num_heads == 0, ValueError, "MultiHeadAttention: embed_dim ",
           embed_dim, " is not divisible by num_heads ", num_heads);
  query = register_module("query", std::make_shared<Linear>(embed_dim, embed_dim, bias, dtype));
  key = register_module("key", std::make_shared<Linear>(embed_dim, embed_dim, bias, dtype));
  value = register_module("value", std::make_shared<Linear>(embed_dim, embed_dim, bias, dtype));
  out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, bias, dtype));
}

Variable MultiHeadAttention::split_heads(const Variable& x) const {
  const int64_t B = x.size(0), T = x.size(1);
  return ag::transpose(ag::reshape(x, {B, T, num_heads, embed_dim / num_heads}), 1, 2);
}

Variable MultiHeadAttention::merge_heads(const Variable& x) const {
  const int64_t B = x.size(0), T = x.size(2);
  return ag::reshape(ag::transpose(x, 1, 2), {B, T, embed_dim});
}

Variable MultiHeadAttention::forward(const Variable& x, const Variable& memory,
                                     const Tensor& key_padding_mask, const Variable& attn_mask) const {
  CW_CHECK(x.dim() == 3 && x.size(2) == embed_dim, ShapeError, "MultiHeadAttention: input ",
           shape_str(x.shape()), " should be (batch, time, ", embed_dim, ")");
  const Variable q = split_heads(query->forward(x));
  const Variable k = split_heads(key->forward(memory));
  const Variable v = split_heads(value->forward(memory));
  const Variable ctx =
      scaled_dot_product_attention(q, k, v, key_padding_mask, attn_mask, dropout, is_training());
  return out_proj->forward(merge_heads(ctx));
}

Variable MultiHeadAttention::forward(const Variable& x, const Tensor& key_padding_mask,
                                     const Variable& attn_mask) const {
  return forward(x, x, key_padding_mask, attn_mask);
}

}  // namespace cw::nn
