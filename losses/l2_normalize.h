// Row-wise L2 normalization p = z / max(||z||, eps) (as torch.nn.functional.normalize) and its
// backward, on plain tensors: the contrastive losses fuse it into their one autograd node rather
// than recording it as separate ops. Part of losses/.
#pragma once

#include "core/tensor.h"

namespace cw::losses {

struct NormalizedRows {
  Tensor unit;  // (N, D) z / max(||z||, eps)
  Tensor norm;  // (N, 1) ||z||
  double eps = 0;
};

NormalizedRows l2_normalize_rows(const Tensor& z, double eps);

// Gradient w.r.t. z given g = dL/dp:
//   ||z|| > eps:  dz = (g - p <p, g>) / ||z||   (p = z/||z||; dp/dz = (I - p p^T) / ||z||)
//   ||z|| <= eps: dz = g / eps                    (the clamped denominator is a constant)
Tensor l2_normalize_rows_backward(const Tensor& g, const NormalizedRows& n);

}  // namespace cw::losses
