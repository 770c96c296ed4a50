// PackedMultiHeadAttention (see packed_attention.h). One GEMM makes q, k and v together, which
// is also cheaper than three separate projections: x is read once.
#include "nn/packed_attention.h"

#include "autograd/functions.h"
#include "nn/attention.h"
#include "nn/init.h"

namespace cw::nn {

PackedMultiHeadAttention::PackedMultiHeadAttention(int64_t embed_dim_, int64_t num_heads_, double dropout_,
                                                   DType dtype)
    : embed_dim(embed_dim_), num_heads(num_heads_), dropout(dropout_) {
  CW_CHECK(embed_dim > 0 && num_heads > 0 && embed_dim % num_heads == 0, ValueError,
           "PackedMultiHeadAttention: embed_dim ", embed_dim, " is not divisible by num_heads ", num_heads);
  CW_CHECK(dropout >= 0 && dropout < 1, ValueError,
           "PackedMultiHeadAttention: dropout must be in [0, 1), got ", dropout);
  in_proj_weight =
      register_parameter("in_proj_weight", init::xavier_uniform({3 * embed_dim, embed_dim}, dtype));
  in_proj_bias = register_parameter("in_proj_bias", ops::zeros({3 * embed_dim}, dtype));
  out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, true, dtype));
  Tensor out_bias = out_proj->bias.data();  // a handle sharing the parameter's storage
  out_bias.fill_(0.0);
}

Variable PackedMultiHeadAttention::forward(const Variable& x, const Tensor& key_padding_mask) const {
  CW_CHECK(x.dim() == 3 && x.size(2) == embed_dim, ShapeError, "PackedMultiHeadAttention: input ",
           shape_str(x.shape()), " should be (batch, tokens, ", embed_dim, ")");
  const int64_t B = x.size(0), T = x.size(1), H = num_heads, Dh = embed_dim / num_heads;
  const Variable qkv = ag::linear(x, in_proj_weight, in_proj_bias);  // (B, T, 3E), the bias added by the GEMM
  const std::vector<Variable> parts = ag::split(qkv, embed_dim, -1);  // 3 x (B, T, E)
  auto heads = [&](const Variable& t) { return ag::transpose(ag::reshape(t, {B, T, H, Dh}), 1, 2); };
  const Variable ctx = scaled_dot_product_attention(heads(parts[0]), heads(parts[1]), heads(parts[2]),
                                                    key_padding_mask, Variable(), dropout,
                                                    is_training());  // (B, H, T, Dh)
  return out_proj->forward(ag::reshape(ag::transpose(ctx, 1, 2), {B, T, embed_dim}));
}

}  // namespace cw::nn
