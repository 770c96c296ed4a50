// CPU kernels of the fused softmax cross-entropy passes (Backend::xent_*). Rows are split over
// OpenMP threads; the column state is split over column chunks, each narrow enough that its
// slice of the block stays in L2 between the max pass and the exp pass. exp goes through Eigen's
// vectorized array exp (std::exp does not vectorize without -ffast-math).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/cpu/cpu_backend.h"

namespace cw::cpu {
namespace {

template <class T>
using Vec = Eigen::Array<T, Eigen::Dynamic, 1>;
template <class T>
using VecMap = Eigen::Map<Vec<T>>;
template <class T>
using ConstVecMap = Eigen::Map<const Vec<T>>;

// Columns per chunk in the column and gradient passes: 256 columns of a 512-row f32 block are
// 512 KiB, one core's L2.
constexpr int64_t kChunk = 256;
constexpr int64_t kSlab = 256;  // rows per online update in the column pass
// Below this many elements (a 512 x 512 block) a pass runs on one thread: its work (~0.1 ms)
// is not worth a barrier, which on a loaded machine can cost a scheduler slice.
constexpr int64_t kParallelMin = int64_t{1} << 18;
template <class T>
using ChunkVec = Eigen::Array<T, Eigen::Dynamic, 1, 0, kChunk, 1>;  // on the stack

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <class T>
XentRowTotals row_pass(const T* s, const T* w, int64_t rows, int64_t n, int64_t row0, bool weighted_rows,
                       double* lse, double* r) {
  int64_t correct = 0;
  double target_term = 0.0, diag = 0.0, total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : correct, target_term, diag, total) \
    if (rows * n >= kParallelMin)
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t i = row0 + k;
    const T* srow = s + k * n;
    const ConstVecMap<T> x(srow, n);
    const T m = x.maxCoeff();
    lse[i] = static_cast<double>(m) + std::log(static_cast<double>((x - m).exp().sum()));
    diag += static_cast<double>(srow[i]);
    total += static_cast<double>(x.sum());
    // torch.argmax semantics: the first maximum counts, so ties with an earlier column miss.
    if (srow[i] == m && std::find(srow, srow + i, m) == srow + i) ++correct;
    if (w) {
      const ConstVecMap<T> wr(w + k * n, n);
      r[i] = static_cast<double>(wr.sum());
      if (weighted_rows) target_term += static_cast<double>((wr * x).sum()) / r[i];
    }
  }
  return {correct, diag, total, target_term};
}

template <class T>
void column_pass(const T* s, const T* w, int64_t rows, int64_t n, int64_t row0, bool need_sum,
                 bool weighted_cols, XentColumnState& st) {
  double* st_max = st.max.data<double>();
  int64_t* st_arg = st.argmax.data<int64_t>();
  double* st_sum = st.sum.data<double>();
  double* st_wdot = weighted_cols ? st.wdot.data<double>() : nullptr;
  double* st_wsum = weighted_cols ? st.wsum.data<double>() : nullptr;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t j0 = c * kChunk, width = std::min(kChunk, n - j0);
    // A slab of kSlab rows of the chunk (256 x 256 f32 = 256 KiB) is read by the max pass and
    // again by the exp pass while it is still in L2; each slab is one online-LSE update.
    for (int64_t k0 = 0; k0 < rows; k0 += kSlab) {
      const int64_t k1 = std::min(rows, k0 + kSlab);
      // Slab max and first argmax of each column: rows in increasing order, strict '>' keeps
      // the first row attaining the max.
      ChunkVec<T> bmax = ChunkVec<T>::Constant(width, -std::numeric_limits<T>::infinity());
      int64_t barg[kChunk] = {};
      for (int64_t k = k0; k < k1; ++k) {
        const T* seg = s + k * n + j0;
        for (int64_t j = 0; j < width; ++j)
          if (seg[j] > bmax[j]) {
            bmax[j] = seg[j];
            barg[j] = row0 + k;
          }
      }
      ChunkVec<T> shift(width);
      for (int64_t j = 0; j < width; ++j) {
        const double old = st_max[j0 + j], now = std::max(old, static_cast<double>(bmax[j]));
        if (static_cast<double>(bmax[j]) > old) st_arg[j0 + j] = barg[j];
        // Online log-sum-exp: rescale what earlier slabs summed to the new max.
        if (need_sum && now > old) st_sum[j0 + j] *= std::exp(old - now);
        st_max[j0 + j] = now;
        shift[j] = static_cast<T>(now);
      }
      if (need_sum) {
        ChunkVec<T> acc = ChunkVec<T>::Zero(width);
        for (int64_t k = k0; k < k1; ++k) acc += (ConstVecMap<T>(s + k * n + j0, width) - shift).exp();
        for (int64_t j = 0; j < width; ++j) st_sum[j0 + j] += static_cast<double>(acc[j]);
      }
      if (weighted_cols) {
        ChunkVec<T> dot = ChunkVec<T>::Zero(width), total = ChunkVec<T>::Zero(width);
        for (int64_t k = k0; k < k1; ++k) {
          const ConstVecMap<T> wk(w + k * n + j0, width);
          dot += ConstVecMap<T>(s + k * n + j0, width) * wk;
          total += wk;
        }
        for (int64_t j = 0; j < width; ++j) {
          st_wdot[j0 + j] += static_cast<double>(dot[j]);
          st_wsum[j0 + j] += static_cast<double>(total[j]);
        }
      }
    }
  }
}

template <class T>
XentGradTotals gradient_pass(T* s, const T* w, int64_t rows, int64_t n, int64_t row0, const XentGradCoeffs& c,
                             const double* lse, const T* clse, const double* r, const T* cinv) {
  const T alpha = static_cast<T>(c.alpha), beta = static_cast<T>(c.beta);
  const bool row_terms = c.target_terms && c.weighted_rows, col_terms = c.target_terms && c.weighted_cols;
  double gs = 0.0, row_term = 0.0, col_term = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : gs, row_term, col_term) if (rows * n >= kParallelMin)
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t i = row0 + k;
    const T lse_i = static_cast<T>(lse[i]);
    const T row_w = c.weighted_rows ? static_cast<T>(c.alpha / r[i]) : T(0);
    double ws_row = 0.0;
    ChunkVec<T> g;
    for (int64_t j0 = 0; j0 < n; j0 += kChunk) {
      const int64_t width = std::min(kChunk, n - j0);
      VecMap<T> x(s + k * n + j0, width);
      g = alpha * (x - lse_i).exp();
      if (c.beta != 0) g += beta * (x - ConstVecMap<T>(clse + j0, width)).exp();
      if (c.weighted_rows || c.weighted_cols) {
        const ConstVecMap<T> wk(w + k * n + j0, width);
        if (row_terms) ws_row += static_cast<double>((wk * x).sum());
        if (col_terms) col_term += static_cast<double>((wk * x * ConstVecMap<T>(cinv + j0, width)).sum());
        if (c.weighted_rows) g -= row_w * wk;
        if (c.weighted_cols) g -= beta * wk * ConstVecMap<T>(cinv + j0, width);
      }
      if (c.diag != 0 && i >= j0 && i < j0 + width) g[i - j0] -= static_cast<T>(c.diag);
      gs += static_cast<double>((g * x).sum());
      x = g;
    }
    if (row_terms) row_term += ws_row / r[i];
  }
  return {gs, row_term, col_term};
}

}  // namespace

XentRowTotals CpuBackend::xent_row_pass(const Tensor& s, const Tensor& w, int64_t row0, bool weighted_rows,
                                        Tensor& lse, Tensor& r) {
  XentRowTotals out;
  dispatch_float(s.dtype(), "xent_row_pass", [&]<class T>() {
    out = row_pass<T>(s.data<T>(), data_or_null<T>(w), s.size(0), s.size(1), row0, weighted_rows,
                      lse.data<double>(), w.defined() ? r.data<double>() : nullptr);
  });
  return out;
}

void CpuBackend::xent_column_pass(const Tensor& s, const Tensor& w, int64_t row0, bool need_sum,
                                  bool weighted_cols, XentColumnState& st) {
  dispatch_float(s.dtype(), "xent_column_pass", [&]<class T>() {
    column_pass<T>(s.data<T>(), data_or_null<T>(w), s.size(0), s.size(1), row0, need_sum, weighted_cols, st);
  });
}

XentGradTotals CpuBackend::xent_gradient(Tensor& s, const Tensor& w, int64_t row0, const XentGradCoeffs& c,
                                         const Tensor& lse, const Tensor& clse, const Tensor& r,
                                         const Tensor& cinv) {
  XentGradTotals out;
  dispatch_float(s.dtype(), "xent_gradient", [&]<class T>() {
    out = gradient_pass<T>(s.data<T>(), data_or_null<T>(w), s.size(0), s.size(1), row0, c, lse.data<double>(),
                           data_or_null<T>(clse), c.weighted_rows ? r.data<double>() : nullptr,
                           data_or_null<T>(cinv));
  });
  return out;
}

}  // namespace cw::cpu
