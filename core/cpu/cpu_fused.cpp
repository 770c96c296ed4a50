// CPU kernels of the fused row and optimizer primitives (Backend::first_nonfinite,
// l2_normalize_rows and its backward, adamw_step, sum_of_squares): one pass over the data each,
// the per-element formulas from core/kernel_math.h. They replace what the composed ops would do
// in several trips through memory (each its own allocation and thread barrier).
#include <algorithm>
#include <cmath>

#include "core/cpu/cpu_backend.h"
#include "core/kernel_math.h"

namespace cw::cpu {
namespace {

constexpr int64_t kRowsParallelMin = int64_t{1} << 18;  // elements; fewer stay on one thread
constexpr int64_t kFlatParallelMin = int64_t{1} << 16;

}  // namespace

int64_t CpuBackend::first_nonfinite(const Tensor& x) {
  return dispatch_float(x.dtype(), "first_nonfinite", [&]<class T>() -> int64_t {
    const T* p = x.data<T>();
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return i;
    return -1;
  });
}

void CpuBackend::l2_normalize_rows(const Tensor& z, double eps, Tensor& unit, Tensor& norm) {
  const int64_t n = z.size(0), d = z.size(1);
  dispatch_float(z.dtype(), "l2_normalize_rows", [&]<class T>() {
    const T* x = z.data<T>();
    T* u = unit.data<T>();
    T* nr = norm.data<T>();
#pragma omp parallel for schedule(static) if (n * d >= kRowsParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      double ss = 0.0;
      for (int64_t k = 0; k < d; ++k) ss += static_cast<double>(x[i * d + k]) * x[i * d + k];
      const double row_norm = std::sqrt(ss);
      const T inv = static_cast<T>(1.0 / l2_clamped_norm(row_norm, eps));
      nr[i] = static_cast<T>(row_norm);
      for (int64_t k = 0; k < d; ++k) u[i * d + k] = x[i * d + k] * inv;
    }
  });
}

void CpuBackend::l2_normalize_rows_backward(const Tensor& g, const Tensor& unit, const Tensor& norm,
                                            double eps, Tensor& gx) {
  const int64_t n = g.size(0), d = g.size(1);
  dispatch_float(g.dtype(), "l2_normalize_rows_backward", [&]<class T>() {
    const T* gp = g.data<T>();
    const T* u = unit.data<T>();
    const T* nr = norm.data<T>();
    T* out = gx.data<T>();
#pragma omp parallel for schedule(static) if (n * d >= kRowsParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      double radial = 0.0;  // <u_i, g_i>, dropped where the norm was clamped
      if (nr[i] > eps)
        for (int64_t k = 0; k < d; ++k) radial += static_cast<double>(u[i * d + k]) * gp[i * d + k];
      const double inv = 1.0 / l2_clamped_norm(static_cast<double>(nr[i]), eps);
      for (int64_t k = 0; k < d; ++k)
        out[i * d + k] = static_cast<T>(l2_normalize_grad(gp[i * d + k], u[i * d + k], radial, inv));
    }
  });
}

void CpuBackend::adamw_step(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, const AdamWStep& s) {
  dispatch_float(p.dtype(), "adamw_step", [&]<class T>() {
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    T* mp = m.data<T>();
    T* vp = v.data<T>();
    const int64_t n = p.numel();
#pragma omp parallel for if (n > kFlatParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      double pi = pp[i], mi = mp[i], vi = vp[i];
      adamw_update(pi, mi, vi, static_cast<double>(gp[i]), s);
      mp[i] = static_cast<T>(mi);
      vp[i] = static_cast<T>(vi);
      pp[i] = static_cast<T>(pi);
    }
  });
}

double CpuBackend::sum_of_squares(const Tensor& x) {
  return dispatch_float(x.dtype(), "sum_of_squares", [&]<class T>() {
    const T* p = x.data<T>();
    const int64_t n = x.numel();
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) if (n > kFlatParallelMin)
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(p[i]) * static_cast<double>(p[i]);
    return s;
  });
}

}  // namespace cw::cpu
