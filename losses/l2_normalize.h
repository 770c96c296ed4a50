// Row-wise L2 normalization p = z / max(||z||, eps) (as torch.nn.functional.normalize) and its
// backward, on plain tensors: the contrastive losses fuse it into their one autograd node rather
// than recording it as separate ops. The kernels are core primitives (ops::l2_normalize_rows, one
// pass per row on every backend; formulas in core/kernel_math.h). Part of losses/.
#pragma once

#include "core/ops.h"

namespace cw::losses {

struct NormalizedRows {
  Tensor unit;  // (N, D) z / max(||z||, eps)
  Tensor norm;  // (N, 1) ||z||
  double eps = 0;
};

inline NormalizedRows l2_normalize_rows(const Tensor& z, double eps) {
  ops::L2NormalizedRows r = ops::l2_normalize_rows(z, eps);
  return {std::move(r.unit), std::move(r.norm), eps};
}

// Gradient w.r.t. z given g = dL/dp:
//   ||z|| > eps:  dz = (g - p <p, g>) / ||z||   (p = z/||z||; dp/dz = (I - p p^T) / ||z||)
//   ||z|| <= eps: dz = g / eps                    (the clamped denominator is a constant)
inline Tensor l2_normalize_rows_backward(const Tensor& g, const NormalizedRows& n) {
  return ops::l2_normalize_rows_backward(g, n.unit, n.norm, n.eps);
}

}  // namespace cw::losses
