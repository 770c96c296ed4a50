// Block kernels of the fused contrastive losses (see block_kernels.h). Rows are split over
// OpenMP threads; column state is split over column chunks, each chunk narrow enough that its
// slice of the block stays in L2 between the max pass and the exp pass. exp goes through Eigen's
// vectorized array exp (std::exp does not vectorize without -ffast-math).
#include "losses/block_kernels.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/backend.h"
#include "core/error.h"

namespace cw::losses::blocks {
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

}  // namespace

int64_t choose_block_rows(int64_t n, int64_t buffers, int64_t requested) {
  if (n <= 0) return 1;
  if (requested > 0) return std::min(requested, n);
  int64_t b = std::max<int64_t>(32, kBlockElements / n);
  b = std::min(b, std::max<int64_t>(1, n / std::max<int64_t>(buffers, 1)));
  return std::clamp<int64_t>(b, 1, n);
}

void gemm_into(const Tensor& a, const Tensor& b, Tensor& out) {
  // The CPU backend threads a big product itself (row slices in our OpenMP team).
  backend_for(out.device(), "contrastive_loss").matmul(a, b, out);
}

void add_into(Tensor& dst, const Tensor& src) {
  CW_CHECK(
      dst.is_contiguous() && src.is_contiguous() && dst.shape() == src.shape() && dst.dtype() == src.dtype(),
      Error, "contrastive_loss: add_into needs matching contiguous tensors");
  dispatch_float(dst.dtype(), "contrastive_loss", [&]<class T>() {
    T* d = dst.data<T>();
    const T* s = src.data<T>();
    const int64_t n = dst.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) d[i] += s[i];
  });
}

template <class T>
RowTotals row_pass(const T* s, const T* w, int64_t rows, int64_t n, int64_t row0, bool weighted_rows,
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

ColumnState::ColumnState(int64_t n)
    : max(n, -std::numeric_limits<double>::infinity()),
      argmax(n, 0),
      sum(n, 0.0),
      wdot(n, 0.0),
      wsum(n, 0.0) {}

template <class T>
void column_pass(const T* s, const T* w, int64_t rows, int64_t n, int64_t row0, bool need_sum,
                 bool weighted_cols, ColumnState& st) {
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
        const double old = st.max[j0 + j], now = std::max(old, static_cast<double>(bmax[j]));
        if (static_cast<double>(bmax[j]) > old) st.argmax[j0 + j] = barg[j];
        // Online log-sum-exp: rescale what earlier slabs summed to the new max.
        if (need_sum && now > old) st.sum[j0 + j] *= std::exp(old - now);
        st.max[j0 + j] = now;
        shift[j] = static_cast<T>(now);
      }
      if (need_sum) {
        ChunkVec<T> acc = ChunkVec<T>::Zero(width);
        for (int64_t k = k0; k < k1; ++k) acc += (ConstVecMap<T>(s + k * n + j0, width) - shift).exp();
        for (int64_t j = 0; j < width; ++j) st.sum[j0 + j] += static_cast<double>(acc[j]);
      }
      if (weighted_cols) {
        ChunkVec<T> dot = ChunkVec<T>::Zero(width), total = ChunkVec<T>::Zero(width);
        for (int64_t k = k0; k < k1; ++k) {
          const ConstVecMap<T> wk(w + k * n + j0, width);
          dot += ConstVecMap<T>(s + k * n + j0, width) * wk;
          total += wk;
        }
        for (int64_t j = 0; j < width; ++j) {
          st.wdot[j0 + j] += static_cast<double>(dot[j]);
          st.wsum[j0 + j] += static_cast<double>(total[j]);
        }
      }
    }
  }
}

template <class T>
GradTotals gradient_pass(T* s, const T* w, int64_t rows, int64_t n, int64_t row0, const GradCoeffs& c,
                         const double* lse, const std::vector<T>& clse, const double* r,
                         const std::vector<T>& cinv) {
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
      if (c.beta != 0) g += beta * (x - ConstVecMap<T>(clse.data() + j0, width)).exp();
      if (c.weighted_rows || c.weighted_cols) {
        const ConstVecMap<T> wk(w + k * n + j0, width);
        if (row_terms) ws_row += static_cast<double>((wk * x).sum());
        if (col_terms)
          col_term += static_cast<double>((wk * x * ConstVecMap<T>(cinv.data() + j0, width)).sum());
        if (c.weighted_rows) g -= row_w * wk;
        if (c.weighted_cols) g -= beta * wk * ConstVecMap<T>(cinv.data() + j0, width);
      }
      if (c.diag != 0 && i >= j0 && i < j0 + width) g[i - j0] -= static_cast<T>(c.diag);
      gs += static_cast<double>((g * x).sum());
      x = g;
    }
    if (row_terms) row_term += ws_row / r[i];
  }
  return {gs, row_term, col_term};
}

#define CW_INSTANTIATE(T)                                                                                \
  template RowTotals row_pass<T>(const T*, const T*, int64_t, int64_t, int64_t, bool, double*, double*); \
  template void column_pass<T>(const T*, const T*, int64_t, int64_t, int64_t, bool, bool, ColumnState&); \
  template GradTotals gradient_pass<T>(T*, const T*, int64_t, int64_t, int64_t, const GradCoeffs&,       \
                                       const double*, const std::vector<T>&, const double*,              \
                                       const std::vector<T>&);
CW_INSTANTIATE(float)
CW_INSTANTIATE(double)
#undef CW_INSTANTIATE

}  // namespace cw::losses::blocks
