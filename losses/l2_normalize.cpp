// Row-wise L2 normalization and its backward (see l2_normalize.h), composed from core ops: O(N D)
// work, negligible beside the loss's O(N^2 D), so no dedicated kernel.
#include "losses/l2_normalize.h"

#include "core/ops.h"

namespace cw::losses {

NormalizedRows l2_normalize_rows(const Tensor& z, double eps) {
  NormalizedRows out;
  out.eps = eps;
  out.norm = ops::sqrt(ops::sum(ops::mul(z, z), {1}, /*keepdim=*/true));  // (N, 1)
  out.unit = ops::div(z, ops::maximum(out.norm, eps));
  return out;
}

Tensor l2_normalize_rows_backward(const Tensor& g, const NormalizedRows& n) {
  // Where the norm was clamped the projection term drops out: mask it with (||z|| > eps).
  const Tensor unclamped = ops::gt(n.norm, n.eps);                                      // (N, 1)
  const Tensor radial = ops::mul(ops::sum(ops::mul(n.unit, g), {1}, true), unclamped);  // <p, g>
  return ops::div(ops::sub(g, ops::mul(n.unit, radial)), ops::maximum(n.norm, n.eps));
}

}  // namespace cw::losses
