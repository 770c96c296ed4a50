// Per-element formulas of the fused row, optimizer and CWCL-weight kernels
// (Backend::l2_normalize_rows, adamw_step, xent_weights), written once under CW_HD: the CUDA
// kernels (cuda/fused.cu, cuda/xent_weights.cu) and the CPU ones (core/cpu/cpu_fused.cpp; the CPU
// weights use Eigen's vectorized form of xent_weight_of) call these, so the backends differ only
// in how a sum is ordered and in the last ulp of exp. Part of core/.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace cw {

// ---- row L2 normalization, as torch.nn.functional.normalize: u = z / max(||z||, eps) ----
// The denominator; std::max's rule (the norm unless it is below eps).
CW_HD double l2_clamped_norm(double norm, double eps) { return norm < eps ? eps : norm; }
// Backward, given g = dL/du, u and ||z|| of the row (u = z / ||z||, du/dz = (I - u u^T) / ||z||):
//   ||z|| > eps:  dz = (g - u <u, g>) / ||z||;   ||z|| <= eps: dz = g / eps (the denominator is a
// constant there, so the radial term drops out). radial = <u, g> of the row, 0 when clamped.
CW_HD double l2_normalize_grad(double g, double u, double radial, double inv_norm) {
  return (g - radial * u) * inv_norm;
}

// ---- AdamW (torch.optim.AdamW, single-tensor path), one element, in double ----
// The per-step scalars: decay = 1 - lr wd, step_size = lr / (1 - beta1^t),
// bc2_sqrt = sqrt(1 - beta2^t).
struct AdamWStep {
  double decay, step_size, bc2_sqrt, beta1, beta2, eps;
};
//   p <- p (1 - lr wd);  m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2;
//   p <- p - step_size m / (sqrt(v) / bc2_sqrt + eps)          (eps outside the square root)
CW_HD void adamw_update(double& p, double& m, double& v, double g, const AdamWStep& s) {
  p *= s.decay;
  m = s.beta1 * m + (1.0 - s.beta1) * g;
  v = s.beta2 * v + (1.0 - s.beta2) * g * g;
  const double denom = sqrt(v) / s.bc2_sqrt + s.eps;
  p = p - s.step_size * m / denom;
}

// ---- CWCL's weights from cosines (Backend::xent_weights) ----
enum class XentWeightKernel : uint8_t { Linear, Exp };
enum class XentWeightMask : uint8_t { None, TopK, Threshold };
struct XentWeightSpec {
  XentWeightKernel kernel = XentWeightKernel::Linear;
  double temperature = 0.1;  // Exp
  XentWeightMask mask = XentWeightMask::None;
  double threshold = 0.5;  // Threshold
};
// w_ij from the cosine c_ij: the kernel, Linear c / 2 + 1/2 (the paper's) or Exp
// exp((c - 1) / temperature), then the mask: TopK keeps the listed columns (`listed`: j is in row
// i's neighbour list, which holds the pair), Threshold keeps c >= threshold and the pair. In the
// element type T, as the CPU's vectorized version of the same formula.
template <class T>
CW_HD T xent_weight_of(T cos, bool pair, const XentWeightSpec& s, bool listed) {
  if (s.mask == XentWeightMask::TopK && !listed) return T(0);
  if (s.mask == XentWeightMask::Threshold && !pair && !(static_cast<double>(cos) >= s.threshold)) return T(0);
  if (s.kernel == XentWeightKernel::Linear) return cos * T(0.5) + T(0.5);
  const T x = (cos - T(1)) * static_cast<T>(1.0 / s.temperature);
  if constexpr (sizeof(T) == 4)
    return expf(x);
  else
    return exp(x);
}
// Whether j is in the sorted list a[0 .. len).
CW_HD bool sorted_contains(const int64_t* a, int64_t len, int64_t j) {
  int64_t lo = 0, hi = len;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] < j)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < len && a[lo] == j;
}

}  // namespace cw
