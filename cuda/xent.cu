// CUDA kernels of the fused softmax cross-entropy passes (Backend::xent_*; the math is derived
// in losses/contrastive_fused.h, the CPU kernels are core/cpu/cpu_xent.cpp).
//
// - Row pass: one block per row of the logit block; block reductions give the row's max, its
//   first argmax (the lowest column attaining the max), the sum of exp(s - max) and the sums of
//   s, w and w s. Per-row results go to the (M) vectors; the totals the loss needs (hits, pair
//   logits, ...) go to a (rows, 4) f64 buffer that the host adds up in row order, so the result
//   does not depend on scheduling.
// - Column pass: a thread per column and a slab of rows per grid row (coalesced across columns)
//   make each slab's max, first argmax and sum of exp(s - slab max); a second kernel folds the
//   slabs into the running column state in row order (merge_columns in xent_math.h).
// - Gradient: one block per row, the row overwritten in place by its gradient (each element is
//   read and written by the same thread), with per-row f64 partials as in the row pass.
#include <climits>

#include "cuda/cuda_backend.h"
#include "cuda/launch.cuh"
#include "cuda/reduce_math.h"
#include "cuda/xent_math.h"

namespace cw::cuda {
namespace {

constexpr int64_t kSlabRows = 64;  // rows per slab of the column pass

// At most 256 threads per row block (kThreads, the width the other kernels here use).
constexpr unsigned kRowThreads = kThreads;

// partials (rows, 4): [hit, s_ii, sum_j s_ij, sum_j w_ij s_ij / r_i].
template <class T>
__global__ void xent_row_kernel(const T* s, const T* w, int64_t n, int64_t row0, bool weighted_rows,
                                double* lse, double* r, double* partials) {
  const int64_t k = blockIdx.x, i = row0 + k;
  const T* srow = s + k * n;
  const T* wrow = w ? w + k * n : nullptr;
  T mx = -INFINITY;
  double total = 0, wsum = 0, wdot = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const T x = srow[j];
    mx = max(mx, x);
    total += static_cast<double>(x);
    if (wrow) {
      wsum += static_cast<double>(wrow[j]);
      wdot += static_cast<double>(wrow[j]) * static_cast<double>(x);
    }
  }
  mx = block_reduce(mx, MaxOp{}, T(-INFINITY));
  int64_t first = LLONG_MAX;
  AccT<T> se = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const T x = srow[j];
    if (x == mx && j < first) first = j;
    se += static_cast<AccT<T>>(dexp(x - mx));
  }
  first = block_reduce(first, MinOp{}, static_cast<int64_t>(LLONG_MAX));
  se = block_reduce(se, SumOp{}, AccT<T>(0));
  total = block_reduce(total, SumOp{}, 0.0);
  if (wrow) {
    wsum = block_reduce(wsum, SumOp{}, 0.0);
    wdot = block_reduce(wdot, SumOp{}, 0.0);
  }
  if (threadIdx.x == 0) {
    lse[i] = static_cast<double>(mx) + log(static_cast<double>(se));
    if (wrow) r[i] = wsum;
    double* out = partials + 4 * k;
    out[0] = first == i ? 1.0 : 0.0;
    out[1] = static_cast<double>(srow[i]);
    out[2] = total;
    out[3] = weighted_rows ? wdot / wsum : 0.0;
  }
}

// Slab y of rows [y * kSlabRows, ...) for column j: its ColumnLse and, weighted, sum w s, sum w.
template <class T>
__global__ void xent_column_slab_kernel(const T* s, const T* w, int64_t rows, int64_t n, int64_t row0,
                                        bool need_sum, double* smax, int64_t* sarg, double* ssum,
                                        double* swdot, double* swsum) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= n) return;
  const int64_t y = blockIdx.y, k0 = y * kSlabRows;
  const int64_t k1 = k0 + kSlabRows < rows ? k0 + kSlabRows : rows;
  T bmax = -INFINITY;
  int64_t barg = row0 + k0;
  for (int64_t k = k0; k < k1; ++k) {
    const T x = s[k * n + j];
    if (x > bmax) {  // strict: the first row attaining the max
      bmax = x;
      barg = row0 + k;
    }
  }
  AccT<T> se = 0;
  double wdot = 0, wsum = 0;
  for (int64_t k = k0; k < k1; ++k) {
    const T x = s[k * n + j];
    if (need_sum) se += static_cast<AccT<T>>(dexp(x - bmax));
    if (w) {
      wdot += static_cast<double>(w[k * n + j]) * static_cast<double>(x);
      wsum += static_cast<double>(w[k * n + j]);
    }
  }
  const int64_t at = y * n + j;
  smax[at] = static_cast<double>(bmax);
  sarg[at] = barg;
  ssum[at] = static_cast<double>(se);
  if (w) {
    swdot[at] = wdot;
    swsum[at] = wsum;
  }
}

__global__ void xent_column_merge_kernel(int64_t n, int64_t slabs, bool need_sum, bool weighted,
                                         const double* smax, const int64_t* sarg, const double* ssum,
                                         const double* swdot, const double* swsum, double* max, int64_t* arg,
                                         double* sum, double* wdot, double* wsum) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= n) return;
  ColumnLse st{max[j], arg[j], sum[j]};
  const double kept_sum = sum[j];
  double dot = weighted ? wdot[j] : 0.0, tot = weighted ? wsum[j] : 0.0;
  for (int64_t y = 0; y < slabs; ++y) {
    const int64_t at = y * n + j;
    st = merge_columns(st, ColumnLse{smax[at], sarg[at], ssum[at]});
    if (weighted) {
      dot += swdot[at];
      tot += swsum[at];
    }
  }
  max[j] = st.max;
  arg[j] = st.arg;
  sum[j] = need_sum ? st.sum : kept_sum;  // without the sum the state's sum is left as it was
  if (weighted) {
    wdot[j] = dot;
    wsum[j] = tot;
  }
}

// partials (rows, 3): [sum_j g s, sum_j w s / r_i, sum_j w s cinv_j].
template <class T>
__global__ void xent_gradient_kernel(T* s, const T* w, int64_t n, int64_t row0, XentGradCoeffs c,
                                     const double* lse, const T* clse, const double* r, const T* cinv,
                                     double* partials) {
  const int64_t k = blockIdx.x, i = row0 + k;
  T* srow = s + k * n;
  const T* wrow = w ? w + k * n : nullptr;
  const T alpha = static_cast<T>(c.alpha), beta = static_cast<T>(c.beta), lse_i = static_cast<T>(lse[i]);
  const T row_w = c.weighted_rows ? static_cast<T>(c.alpha / r[i]) : T(0);
  const bool column_softmax = c.beta != 0;
  double gs = 0, ws_row = 0, ws_col = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const T x = srow[j];
    const T wv = wrow ? wrow[j] : T(0);
    const T ci = c.weighted_cols ? cinv[j] : T(0);
    if (c.target_terms && c.weighted_rows) ws_row += static_cast<double>(wv * x);
    if (c.target_terms && c.weighted_cols) ws_col += static_cast<double>(wv * x * ci);
    const T g =
        gradient_element<T>(x, wv, alpha, lse_i, beta, column_softmax ? clse[j] : T(0), column_softmax, row_w,
                            c.weighted_rows, ci, c.weighted_cols, j == i ? static_cast<T>(c.diag) : T(0));
    gs += static_cast<double>(g * x);
    srow[j] = g;
  }
  gs = block_reduce(gs, SumOp{}, 0.0);
  ws_row = block_reduce(ws_row, SumOp{}, 0.0);
  ws_col = block_reduce(ws_col, SumOp{}, 0.0);
  if (threadIdx.x == 0) {
    double* out = partials + 3 * k;
    out[0] = gs;
    out[1] = c.target_terms && c.weighted_rows ? ws_row / r[i] : 0.0;
    out[2] = ws_col;
  }
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}
template <class T>
T* mut_or_null(Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// The per-row partials, added on the host in row order.
std::vector<double> column_sums(const Tensor& partials) {
  const int64_t rows = partials.size(0), width = partials.size(1);
  const std::vector<double> v = partials.to(Device::cpu()).to_vector<double>();
  std::vector<double> out(static_cast<size_t>(width), 0.0);
  for (int64_t k = 0; k < rows; ++k)
    for (int64_t c = 0; c < width; ++c) out[static_cast<size_t>(c)] += v[static_cast<size_t>(k * width + c)];
  return out;
}

}  // namespace

XentRowTotals CudaBackend::xent_row_pass(const Tensor& s, const Tensor& w, int64_t row0, bool weighted_rows,
                                         Tensor& lse, Tensor& r) {
  const int64_t rows = s.size(0), n = s.size(1);
  XentRowTotals out;
  if (rows == 0) return out;
  DeviceGuard g(s.device());
  Tensor partials = Tensor::empty({rows, 4}, DType::F64, s.device());
  dispatch_cuda<false>(s.dtype(), "xent_row_pass", [&](auto tag) {
    using T = decltype(tag);
    xent_row_kernel<T><<<static_cast<unsigned>(rows), row_threads(n, kRowThreads), 0, stream()>>>(
        s.data<T>(), ptr_or_null<T>(w), n, row0, weighted_rows, lse.data<double>(),
        w.defined() ? r.data<double>() : nullptr, partials.data<double>());
  });
  CW_CUDA_CHECK_LAUNCH("xent_row_kernel");
  const std::vector<double> sums = column_sums(partials);
  out.correct = static_cast<int64_t>(sums[0] + 0.5);
  out.diag = sums[1];
  out.total = sums[2];
  out.target_term = sums[3];
  return out;
}

void CudaBackend::xent_column_pass(const Tensor& s, const Tensor& w, int64_t row0, bool need_sum,
                                   bool weighted_cols, XentColumnState& st) {
  const int64_t rows = s.size(0), n = s.size(1);
  if (rows == 0 || n == 0) return;
  DeviceGuard g(s.device());
  const int64_t slabs = (rows + kSlabRows - 1) / kSlabRows;
  CW_CHECK(slabs <= 65535, NotImplementedError, "xent_column_pass: ", rows,
           " rows in one block is more than ", 65535 * kSlabRows,
           " (the grid's y limit); pass smaller row blocks");
  const Device dev = s.device();
  Tensor smax = Tensor::empty({slabs, n}, DType::F64, dev), ssum = Tensor::empty({slabs, n}, DType::F64, dev);
  Tensor sarg = Tensor::empty({slabs, n}, DType::I64, dev);
  Tensor swdot, swsum;
  if (weighted_cols) {
    swdot = Tensor::empty({slabs, n}, DType::F64, dev);
    swsum = Tensor::empty({slabs, n}, DType::F64, dev);
  }
  const Tensor wk = weighted_cols ? w : Tensor();  // the slab kernel sums w only for weighted columns
  const dim3 grid(grid_for(n), static_cast<unsigned>(slabs));
  dispatch_cuda<false>(s.dtype(), "xent_column_pass", [&](auto tag) {
    using T = decltype(tag);
    xent_column_slab_kernel<T><<<grid, kThreads, 0, stream()>>>(
        s.data<T>(), ptr_or_null<T>(wk), rows, n, row0, need_sum, smax.data<double>(), sarg.data<int64_t>(),
        ssum.data<double>(), mut_or_null<double>(swdot), mut_or_null<double>(swsum));
  });
  CW_CUDA_CHECK_LAUNCH("xent_column_slab_kernel");
  xent_column_merge_kernel<<<grid_for(n), kThreads, 0, stream()>>>(
      n, slabs, need_sum, weighted_cols, smax.data<double>(), sarg.data<int64_t>(), ssum.data<double>(),
      ptr_or_null<double>(swdot), ptr_or_null<double>(swsum), st.max.data<double>(),
      st.argmax.data<int64_t>(), st.sum.data<double>(), weighted_cols ? st.wdot.data<double>() : nullptr,
      weighted_cols ? st.wsum.data<double>() : nullptr);
  CW_CUDA_CHECK_LAUNCH("xent_column_merge_kernel");
}

XentGradTotals CudaBackend::xent_gradient(Tensor& s, const Tensor& w, int64_t row0, const XentGradCoeffs& c,
                                          const Tensor& lse, const Tensor& clse, const Tensor& r,
                                          const Tensor& cinv) {
  const int64_t rows = s.size(0), n = s.size(1);
  XentGradTotals out;
  if (rows == 0) return out;
  DeviceGuard g(s.device());
  Tensor partials = Tensor::empty({rows, 3}, DType::F64, s.device());
  dispatch_cuda<false>(s.dtype(), "xent_gradient", [&](auto tag) {
    using T = decltype(tag);
    xent_gradient_kernel<T><<<static_cast<unsigned>(rows), row_threads(n, kRowThreads), 0, stream()>>>(
        s.data<T>(), ptr_or_null<T>(w), n, row0, c, lse.data<double>(), ptr_or_null<T>(clse),
        c.weighted_rows ? r.data<double>() : nullptr, ptr_or_null<T>(cinv), partials.data<double>());
  });
  CW_CUDA_CHECK_LAUNCH("xent_gradient_kernel");
  const std::vector<double> sums = column_sums(partials);
  out.gs = sums[0];
  out.row_term = sums[1];
  out.col_term = sums[2];
  return out;
}

}  // namespace cw::cuda
