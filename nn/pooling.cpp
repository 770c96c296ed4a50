// Sequence pooling (see pooling.h), following sentence-transformers' models/Pooling.py step by
// step so that the same checkpoint gives the same sentence embedding.
#include "nn/pooling.h"

#include <cmath>

#include "core/error.h"
#include "core/ops.h"

namespace cw::nn {

namespace {

// The checks every pooling shares; returns the mask as hidden's dtype, (B, T, 1).
Tensor mask_as_weights(const char* op, const Variable& hidden, const Tensor& attention_mask) {
  CW_CHECK(hidden.defined() && attention_mask.defined(), ValueError, op, ": undefined input");
  CW_CHECK(hidden.dim() == 3 && attention_mask.shape() == (Shape{hidden.size(0), hidden.size(1)}), ShapeError,
           op, ": hidden ", shape_str(hidden.shape()), " and mask ", shape_str(attention_mask.shape()),
           " should be (B, T, H) and (B, T)");
  return attention_mask.to(hidden.dtype()).unsqueeze(-1);
}

}  // namespace

Variable masked_mean_pool(const Variable& hidden, const Tensor& attention_mask) {
  const Tensor m = mask_as_weights("masked_mean_pool", hidden, attention_mask);  // (B, T, 1)
  const Tensor count = ops::maximum(ops::sum(m, {1}), 1e-9);                     // (B, 1)
  return ag::div(ag::sum(hidden * Variable(m), {1}), Variable(count));
}

Variable masked_mean_sqrt_len_pool(const Variable& hidden, const Tensor& attention_mask) {
  const Tensor m = mask_as_weights("masked_mean_sqrt_len_pool", hidden, attention_mask);
  const Tensor root_count = ops::sqrt(ops::maximum(ops::sum(m, {1}), 1e-9));  // (B, 1)
  return ag::div(ag::sum(hidden * Variable(m), {1}), Variable(root_count));
}

Variable masked_max_pool(const Variable& hidden, const Tensor& attention_mask) {
  const Tensor m = mask_as_weights("masked_max_pool", hidden, attention_mask);
  // mask == 0 -> -1e9 (sentence-transformers' value, not -inf: an all-padding row stays finite).
  return ag::amax(ag::masked_fill(hidden, ops::eq(m, 0.0), -1e9), {1});
}

Variable cls_pool(const Variable& hidden) {
  CW_CHECK(hidden.defined() && hidden.dim() == 3 && hidden.size(1) > 0, ShapeError,
           "cls_pool: hidden should be (B, T, H) with T > 0, got ", shape_str(hidden.shape()));
  return ag::select(hidden, 1, 0);
}

// The rows' formula and its gradient are the core primitive's (ops::l2_normalize_rows; the gradient
// in core/kernel_math.h), the one the contrastive losses use, recorded as one node.
Variable l2_normalize(const Variable& x, double eps) {
  CW_CHECK(x.defined() && x.dim() >= 1, ShapeError, "l2_normalize: expected a tensor with a last dim");
  const Shape shape = x.shape();
  const int64_t d = shape.back();
  ops::L2NormalizedRows r =
      ops::l2_normalize_rows(x.data().contiguous().reshape({-1, d}), eps);  // (N, d), (N, 1)
  return ag::record(
      "l2_normalize", r.unit.reshape(shape), {x}, [r, eps, shape, d](const Grads& g, const auto&) {
        return Grads{ops::l2_normalize_rows_backward(g[0].contiguous().reshape({-1, d}), r.unit, r.norm, eps)
                         .reshape(shape)};
      });
}

std::string PoolingModes::describe() const {
  std::string s;
  for (auto [on, name] : {std::pair{cls_token, "cls"}, std::pair{max_tokens, "max"},
                          std::pair{mean_tokens, "mean"}, std::pair{mean_sqrt_len_tokens, "mean_sqrt_len"}})
    if (on) {
      if (!s.empty()) s += '+';
      s += name;
    }
  return s.empty() ? "none" : s;
}

Variable pool(const Variable& hidden, const Tensor& attention_mask, const PoolingModes& modes) {
  CW_CHECK(modes.count() > 0, ValueError, "pool: no pooling mode is on");
  std::vector<Variable> parts;
  if (modes.cls_token) parts.push_back(cls_pool(hidden));
  if (modes.max_tokens) parts.push_back(masked_max_pool(hidden, attention_mask));
  if (modes.mean_tokens) parts.push_back(masked_mean_pool(hidden, attention_mask));
  if (modes.mean_sqrt_len_tokens) parts.push_back(masked_mean_sqrt_len_pool(hidden, attention_mask));
  return parts.size() == 1 ? parts[0] : ag::concat(parts, -1);
}

}  // namespace cw::nn
