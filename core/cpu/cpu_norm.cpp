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
namespace {
// One row of a contiguous (rows, n) tensor as an Eigen array (SIMD arithmetic and reductions).
template <class T>
using Row = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using ConstRow = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
}  // namespace

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
      // as scratch for log-softmax) and summed with a SIMD reduction.
      const Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> xr(xi, n);
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> yr(yi, n);
      const T mx = xr.maxCoeff();
      yr = (xr - mx).exp();
      const double s = yr.sum();
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
      const ConstRow<T> yr(py + r * n, n), gr(pg + r * n, n);
      Row<T> xr(px + r * n, n);
      if (log) {
        xr = gr - yr.exp() * gr.sum();
      } else {
        xr = yr * (gr - (gr * yr).sum());
      }
    }
  });
}

void CpuBackend::layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                            Tensor& mean, Tensor& rstd) {
  dispatch_float(x.dtype(), "layer_norm", [&]<class T>() {
    const int64_t rows = x.size(0), n = x.size(1);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    T* pm = mean.data<T>();
    T* pr = rstd.data<T>();
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const ConstRow<T> xr(px + r * n, n);
      Row<T> yr(py + r * n, n);
      // Two passes (mean, then squared deviations) over a row that stays in cache: no
      // cancellation from E[x^2] - E[x]^2, and both sums are SIMD reductions.
      const T mu = n ? xr.sum() / static_cast<T>(n) : T(0);
      const T var = n ? (xr - mu).square().sum() / static_cast<T>(n) : T(0);
      const T rs = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var) + eps));
      yr = (xr - mu) * rs;
      if (weight.defined()) yr *= ConstRow<T>(weight.data<T>(), n);
      if (bias.defined()) yr += ConstRow<T>(bias.data<T>(), n);
      pm[r] = mu;
      pr[r] = rs;
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
    T* pgx = gx.data<T>();
    const bool need_w = gweight.defined(), need_b = gbias.defined();
    // Per-thread partial sums of dw and db (in double: they run over every row of the batch),
    // reduced at the end: no atomics on the hot path.
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
      Eigen::Array<T, Eigen::Dynamic, 1> h(n), d(n);  // xhat and dxhat of the current row
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const ConstRow<T> xr(px + r * n, n), gr(pg + r * n, n);
        const T m = pm[r], rs = pr[r];
        h = (xr - m) * rs;
        if (weight.defined())
          d = gr * ConstRow<T>(weight.data<T>(), n);
        else
          d = gr;
        const T md = d.sum() / static_cast<T>(n), mdh = (d * h).sum() / static_cast<T>(n);
        Row<T>(pgx + r * n, n) = rs * (d - md - h * mdh);
        if (need_w) Eigen::Map<Eigen::ArrayXd>(part_w.data() + tid * n, n) += (gr * h).template cast<Acc>();
        if (need_b) Eigen::Map<Eigen::ArrayXd>(part_b.data() + tid * n, n) += gr.template cast<Acc>();
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
