// Least-squares fit of an affine map Y ~ X W^T + b (ridge-regularized normal equations), the
// closed-form baseline of a projection head: how far a frozen tower's pooled features reach the
// text tower's space with no contrastive training at all (eval --baseline lstsq). Part of train/.
#pragma once

#include "core/tensor.h"

namespace cw::train {

struct LinearFit {
  Tensor weight;  // (E, D) f32, as nn::Linear's
  Tensor bias;    // (E) f32
};

// X (N, D), Y (N, E) f32 or f64 on the CPU, N >= 1. Solves (A^T A + ridge * tr(A^T A)/(D+1) I) W'
// = A^T Y for A = [X | 1] by Cholesky in f64 (D is a few hundred: the solve is negligible next to
// A^T A). ridge > 0 keeps it well posed when N <= D or features are collinear.
LinearFit fit_linear(const Tensor& X, const Tensor& Y, double ridge = 1e-4);

}  // namespace cw::train
