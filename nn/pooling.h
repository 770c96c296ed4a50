// Pooling of a sequence of token states into one vector per sequence, as sentence-transformers'
// Pooling module does it (mean over the real tokens, max over them, the first ([CLS]) token,
// the sum over sqrt(token count)), and L2 normalization (its Normalize module). Used by the text
// tower's sentence encoder and by the speech towers (masked mean over valid frames). All are
// compositions of ag ops, so differentiable. Part of nn/.
#pragma once

#include <string>

#include "autograd/functions.h"

namespace cw::nn {

// hidden (B, T, H), attention_mask (B, T) with 1 = token, 0 = padding (any dtype) -> (B, H).
// The mean of the token states where the mask is 1. The count is clamped at 1e-9 as
// sentence-transformers does, so an all-padding row gives 0, not NaN.
Variable masked_mean_pool(const Variable& hidden, const Tensor& attention_mask);
// The sum of the token states over sqrt(count) (pooling_mode_mean_sqrt_len_tokens).
Variable masked_mean_sqrt_len_pool(const Variable& hidden, const Tensor& attention_mask);
// The element-wise max over the token states where the mask is 1. Padding is set to -1e9 first,
// as sentence-transformers does (an all-padding row gives -1e9, as there). The gradient goes to
// the maximal element (split evenly among ties, as ag::amax does).
Variable masked_max_pool(const Variable& hidden, const Tensor& attention_mask);
// The first token's state, hidden[:, 0] (BERT's [CLS]; pooling_mode_cls_token).
Variable cls_pool(const Variable& hidden);

// x / max(||x||_2, eps) over the last dim (torch.nn.functional.normalize).
Variable l2_normalize(const Variable& x, double eps = 1e-12);

// The modes of a sentence-transformers Pooling module (1_Pooling/config.json). With several on,
// their results are concatenated in sentence-transformers' order: cls, max, mean, mean_sqrt_len
// (so the output is (B, k * H) for k modes on).
struct PoolingModes {
  bool cls_token = false;
  bool max_tokens = false;
  bool mean_tokens = true;
  bool mean_sqrt_len_tokens = false;
  int count() const { return cls_token + max_tokens + mean_tokens + mean_sqrt_len_tokens; }
  std::string describe() const;  // e.g. "cls", "mean+max"
};
// hidden (B, T, H), attention_mask (B, T) -> (B, modes.count() * H). At least one mode must be on.
Variable pool(const Variable& hidden, const Tensor& attention_mask, const PoolingModes& modes);

}  // namespace cw::nn
