// Row-wise L2 normalization and its backward (see l2_normalize.h): one pass over the rows each
// on the CPU, rather than the six elementwise ops and reductions the formula takes in core ops,
// each of which would be its own trip through memory and its own thread barrier. Off the CPU
// the same formulas run as core ops (N x D, small beside the loss's N x N work).
#include "losses/l2_normalize.h"

#include <algorithm>
#include <cmath>

#include "core/ops.h"

namespace cw::losses {
namespace {

constexpr int64_t kParallelMin = int64_t{1} << 18;  // elements; fewer stay on one thread

NormalizedRows normalize_composed(const Tensor& z, double eps) {
  NormalizedRows out;
  out.eps = eps;
  out.norm = ops::sqrt(ops::sum(ops::mul(z, z), {1}, /*keepdim=*/true));  // (N, 1)
  out.unit = ops::div(z, ops::maximum(out.norm, eps));
  return out;
}

Tensor normalize_backward_composed(const Tensor& g, const NormalizedRows& nr) {
  // radial_i = <u_i, g_i> where ||z_i|| > eps, else 0.
  const Tensor live = ops::gt(nr.norm, nr.eps);
  const Tensor radial = ops::mul(ops::sum(ops::mul(nr.unit, g), {1}, true), live.to(g.dtype()));
  return ops::div(ops::sub(g, ops::mul(radial, nr.unit)), ops::maximum(nr.norm, nr.eps));
}

}  // namespace

NormalizedRows l2_normalize_rows(const Tensor& z_in, double eps) {
  if (!z_in.device().is_cpu()) return normalize_composed(z_in, eps);
  const Tensor z = z_in.contiguous();
  const int64_t n = z.size(0), d = z.size(1);
  NormalizedRows out;
  out.eps = eps;
  out.unit = Tensor::empty(z.shape(), z.dtype(), z.device());
  out.norm = Tensor::empty({n, 1}, z.dtype(), z.device());
  dispatch_float(z.dtype(), "l2_normalize_rows", [&]<class T>() {
    const T* x = z.data<T>();
    T* u = out.unit.data<T>();
    T* nr = out.norm.data<T>();
#pragma omp parallel for schedule(static) if (n * d >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      double ss = 0.0;
      for (int64_t k = 0; k < d; ++k) ss += static_cast<double>(x[i * d + k]) * x[i * d + k];
      const double norm = std::sqrt(ss);
      const T inv = static_cast<T>(1.0 / std::max(norm, eps));
      nr[i] = static_cast<T>(norm);
      for (int64_t k = 0; k < d; ++k) u[i * d + k] = x[i * d + k] * inv;
    }
  });
  return out;
}

Tensor l2_normalize_rows_backward(const Tensor& g_in, const NormalizedRows& nr) {
  if (!g_in.device().is_cpu()) return normalize_backward_composed(g_in, nr);
  const Tensor g = g_in.contiguous();
  const int64_t n = g.size(0), d = g.size(1);
  Tensor dz = Tensor::empty(g.shape(), g.dtype(), g.device());
  dispatch_float(g.dtype(), "l2_normalize_rows_backward", [&]<class T>() {
    const T* gp = g.data<T>();
    const T* u = nr.unit.data<T>();
    const T* norm = nr.norm.data<T>();
    T* out = dz.data<T>();
#pragma omp parallel for schedule(static) if (n * d >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      // Where the norm was clamped the projection term drops out (the denominator is eps).
      double radial = 0.0;
      if (norm[i] > nr.eps)
        for (int64_t k = 0; k < d; ++k) radial += static_cast<double>(u[i * d + k]) * gp[i * d + k];
      const double inv = 1.0 / std::max(static_cast<double>(norm[i]), nr.eps);
      for (int64_t k = 0; k < d; ++k)
        out[i * d + k] = static_cast<T>((gp[i * d + k] - radial * u[i * d + k]) * inv);
    }
  });
  return dz;
}

}  // namespace cw::losses
