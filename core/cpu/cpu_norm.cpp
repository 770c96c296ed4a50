// CPU softmax / log-softmax and layer norm, forward and backward, one pass per row with
// OpenMP over rows. Formulas (rows of length n):
//   softmax:      y = exp(x - max) / sum exp(x - max)         (shift for stability)
//   backward:     dx = y * (dy - sum(dy * y))
//   log_softmax:  y = (x - max) - log sum exp(x - max);  dx = dy - exp(y) * sum(dy)
//   layer norm:   xhat = (x - mean) * rstd, y = xhat * w + b, rstd = 1 / sqrt(var + eps)
//   backward:     dxhat = dy * w
//                 dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
//                 dw = sum_rows dy * xhat,  db = sum_rows dy
#include <Eigen/Core>
#include <cmath>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/cpu/cpu_backend.h"
#include "core/cpu/strided_loop.h"

namespace cw::cpu {

void CpuBackend::softmax(const Tensor& x, Tensor& out, bool log) {
  dispatch_float(x.dtype(), "softmax", [&]<class T>() {
    const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
    const int64_t rows = n == 0 ? 0 : x.numel() / n;
    const T* px = x.data<T>();
    T* py = out.data<T>();
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xi = px + r * n;
      T* yi = py + r * n;
      // Eigen's SIMD exp on the row; the exponentials are written once (into y, or into y
      // as scratch for log-softmax) and summed in double.
      const Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> xr(xi, n);
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> yr(yi, n);
      const T mx = xr.maxCoeff();
      yr = (xr - mx).exp();
      const double s = yr.template cast<double>().sum();
      if (log) {
        // (x - max) - log(sum), in this order: x - max is exact, while forming max + log(sum)
        // first would round it to the size of x and cancel (3e-5 error for f32 x ~ 1000).
        const T log_s = static_cast<T>(std::log(s));
        for (int64_t j = 0; j < n; ++j) yi[j] = (xi[j] - mx) - log_s;
      } else {
        const T inv = static_cast<T>(1.0 / s);
        for (int64_t j = 0; j < n; ++j) yi[j] *= inv;
      }
    }
  });
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) {
  dispatch_float(y.dtype(), "softmax_backward", [&]<class T>() {
    const int64_t n = y.dim() == 0 ? 1 : y.size(-1);
    const int64_t rows = n == 0 ? 0 : y.numel() / n;
    const T* py = y.data<T>();
    const T* pg = gy.data<T>();
    T* px = gx.data<T>();
#pragma omp parallel for schedule(static) if (y.numel() >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const T* yi = py + r * n;
      const T* gi = pg + r * n;
      T* xi = px + r * n;
      double s = 0;
      if (log) {
        for (int64_t j = 0; j < n; ++j) s += gi[j];
        for (int64_t j = 0; j < n; ++j) xi[j] = gi[j] - std::exp(yi[j]) * static_cast<T>(s);
      } else {
        for (int64_t j = 0; j < n; ++j) s += static_cast<double>(gi[j]) * yi[j];
        for (int64_t j = 0; j < n; ++j) xi[j] = yi[j] * (gi[j] - static_cast<T>(s));
      }
    }
  });
}

void CpuBackend::layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                            Tensor& mean, Tensor& rstd) {
  dispatch_float(x.dtype(), "layer_norm", [&]<class T>() {
    const int64_t rows = x.size(0), n = x.size(1);
    const T* px = x.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    T* py = y.data<T>();
    T* pm = mean.data<T>();
    T* pr = rstd.data<T>();
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xi = px + r * n;
      T* yi = py + r * n;
      // Two passes in double: exact enough for f32 rows of any width, and the row is in cache.
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += xi[j];
      const double mu = n ? s / static_cast<double>(n) : 0.0;
      double v = 0;
      for (int64_t j = 0; j < n; ++j) v += (xi[j] - mu) * (xi[j] - mu);
      const double rs = 1.0 / std::sqrt((n ? v / static_cast<double>(n) : 0.0) + eps);
      const T m = static_cast<T>(mu), rt = static_cast<T>(rs);
      for (int64_t j = 0; j < n; ++j) {
        T h = (xi[j] - m) * rt;
        if (w) h *= w[j];
        if (b) h += b[j];
        yi[j] = h;
      }
      pm[r] = m;
      pr[r] = rt;
    }
  });
}

void CpuBackend::layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& mean,
                                     const Tensor& rstd, const Tensor& weight, Tensor& gx, Tensor& gweight,
                                     Tensor& gbias) {
  dispatch_float(x.dtype(), "layer_norm_backward", [&]<class T>() {
    using Acc = double;
    const int64_t rows = x.size(0), n = x.size(1);
    const T* px = x.data<T>();
    const T* pg = gy.data<T>();
    const T* pm = mean.data<T>();
    const T* pr = rstd.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    T* pgx = gx.data<T>();
    const bool need_w = gweight.defined(), need_b = gbias.defined();
    // Per-thread partial sums of dw and db, reduced at the end: no atomics on the hot path.
    int nthreads = 1;
#ifdef _OPENMP
    nthreads = omp_get_max_threads();
#endif
    std::vector<Acc> part_w(need_w ? nthreads * n : 0, 0.0), part_b(need_b ? nthreads * n : 0, 0.0);
#pragma omp parallel num_threads(nthreads) if (x.numel() >= kParallelGrain)
    {
      int tid = 0;
#ifdef _OPENMP
      tid = omp_get_thread_num();
#endif
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const T* xi = px + r * n;
        const T* gi = pg + r * n;
        T* dxi = pgx + r * n;
        const Acc m = pm[r], rs = pr[r];
        Acc sum_d = 0, sum_dh = 0;  // sum(dxhat), sum(dxhat * xhat)
        for (int64_t j = 0; j < n; ++j) {
          const Acc h = (xi[j] - m) * rs;
          const Acc d = w ? static_cast<Acc>(gi[j]) * w[j] : static_cast<Acc>(gi[j]);
          sum_d += d;
          sum_dh += d * h;
          if (need_w) part_w[tid * n + j] += static_cast<Acc>(gi[j]) * h;
          if (need_b) part_b[tid * n + j] += gi[j];
        }
        const Acc md = sum_d / static_cast<Acc>(n), mdh = sum_dh / static_cast<Acc>(n);
        for (int64_t j = 0; j < n; ++j) {
          const Acc h = (xi[j] - m) * rs;
          const Acc d = w ? static_cast<Acc>(gi[j]) * w[j] : static_cast<Acc>(gi[j]);
          dxi[j] = static_cast<T>(rs * (d - md - h * mdh));
        }
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      Acc sw = 0, sb = 0;
      for (int t = 0; t < nthreads; ++t) {
        if (need_w) sw += part_w[t * n + j];
        if (need_b) sb += part_b[t * n + j];
      }
      if (need_w) gweight.data<T>()[j] = static_cast<T>(sw);
      if (need_b) gbias.data<T>()[j] = static_cast<T>(sb);
    }
  });
}

}  // namespace cw::cpu
