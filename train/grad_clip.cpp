// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_, L2). Part of train/.
#include "train/grad_clip.h"

#include <cmath>

#include "core/error.h"
#include "core/ops.h"

namespace cw::train {

double grad_norm(const std::vector<Variable>& params) {
  double total = 0.0;
  for (const Variable& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    // Accumulated in f64 whatever the dtype, so that the norm over ~10^8 f32 elements does not
    // lose the small gradients to rounding (one kernel per gradient, on its device).
    total += ops::sum_of_squares(p.grad());
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Variable>& params, double max_norm) {
  CW_CHECK(max_norm > 0.0, ValueError, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  const double norm = grad_norm(params);
  if (!std::isfinite(norm)) return norm;  // the caller stops; scaling would spread the NaN
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return norm;
  for (const Variable& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    // A fresh tensor rather than an in-place scale: .grad may be shared with a caller's handle.
    Variable handle = p;  // same VariableImpl
    handle.set_grad(ops::mul(p.grad(), coef));
  }
  return norm;
}

}  // namespace cw::train
