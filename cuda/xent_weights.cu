// CUDA kernels of CWCL's weight blocks (Backend::xent_weights, xent_weight_sums, row_topk; the
// CPU kernels are core/cpu/cpu_xent_weights.cpp, the formulas core/kernel_math.h). One thread per
// element for the weights (a top-k row's membership by binary search in its sorted neighbour
// list), one block per row for the row sums, one thread per column for the column sums, one
// thread per row for the top k (k passes over the row; k is small).
#include <cstdint>

#include "core/kernel_math.h"
#include "cuda/cuda_backend.h"
#include "cuda/launch.cuh"

namespace cw::cuda {
namespace {

template <class T>
__global__ void xent_weights_kernel(T* c, int64_t rows, int64_t n, int64_t row0, XentWeightSpec s,
                                    const int64_t* offsets, const int64_t* index) {
  const int64_t total = rows * n;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = row0 + e / n, j = e % n;
    const T cos = c[e];
    c[e] = xent_weight_of(
        cos, i == j, s, offsets ? sorted_contains(index + offsets[i], offsets[i + 1] - offsets[i], j) : true);
  }
}

template <class T>
__global__ void row_sums_kernel(const T* w, int64_t n, double* rows) {
  const T* wr = w + blockIdx.x * n;
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += static_cast<double>(wr[j]);
  s = block_reduce(s, SumOp{}, 0.0);
  if (threadIdx.x == 0) rows[blockIdx.x] = s;
}

template <class T>
__global__ void col_sums_kernel(const T* w, int64_t rows, int64_t n, double* cols) {
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < n;
       j += int64_t{gridDim.x} * blockDim.x) {
    double s = 0.0;
    for (int64_t k = 0; k < rows; ++k) s += static_cast<double>(w[k * n + j]);
    cols[j] += s;
  }
}

// Row r's k largest entries, larger first and equal ones by the lower index: pass t picks the best
// entry that comes after pass t-1's pick in that order.
template <class T>
__global__ void row_topk_kernel(const T* c, int64_t rows, int64_t n, int64_t k, int64_t* top) {
  for (int64_t r = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; r < rows;
       r += int64_t{gridDim.x} * blockDim.x) {
    const T* row = c + r * n;
    T last_v = 0;
    int64_t last_j = -1;
    for (int64_t t = 0; t < k; ++t) {
      int64_t best = -1;
      for (int64_t j = 0; j < n; ++j) {
        const T v = row[j];
        const bool after = last_j < 0 || v < last_v || (v == last_v && j > last_j);
        if (after && (best < 0 || v > row[best])) best = j;  // ties keep the lower j
      }
      top[r * k + t] = best;
      last_v = row[best];
      last_j = best;
    }
  }
}

}  // namespace

void CudaBackend::xent_weights(Tensor& c, int64_t row0, const XentWeightSpec& s, const Tensor& offsets,
                               const Tensor& index) {
  const int64_t rows = c.size(0), n = c.size(1);
  if (rows == 0 || n == 0) return;
  DeviceGuard g(c.device());
  const bool topk = s.mask == XentWeightMask::TopK;
  dispatch_cuda<false>(c.dtype(), "xent_weights", [&](auto tag) {
    using T = decltype(tag);
    xent_weights_kernel<T><<<grid_for(rows * n), kThreads, 0, stream()>>>(
        c.data<T>(), rows, n, row0, s, topk ? offsets.data<int64_t>() : nullptr,
        topk ? index.data<int64_t>() : nullptr);
  });
  CW_CUDA_CHECK_LAUNCH("xent_weights_kernel");
}

void CudaBackend::xent_weight_sums(const Tensor& w, Tensor& rows_out, Tensor& cols_out) {
  const int64_t rows = w.size(0), n = w.size(1);
  if (rows == 0 || n == 0) return;
  DeviceGuard g(w.device());
  dispatch_cuda<false>(w.dtype(), "xent_weight_sums", [&](auto tag) {
    using T = decltype(tag);
    row_sums_kernel<T><<<static_cast<unsigned>(rows), row_threads(n, kThreads), 0, stream()>>>(
        w.data<T>(), n, rows_out.data<double>());
    col_sums_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(w.data<T>(), rows, n, cols_out.data<double>());
  });
  CW_CUDA_CHECK_LAUNCH("xent_weight_sums kernels");
}

void CudaBackend::row_topk(const Tensor& c, int64_t k, Tensor& idx) {
  const int64_t rows = c.size(0), n = c.size(1);
  if (rows == 0 || k == 0) return;
  DeviceGuard g(c.device());
  dispatch_cuda<false>(c.dtype(), "row_topk", [&](auto tag) {
    using T = decltype(tag);
    row_topk_kernel<T><<<grid_for(rows, 64), 64, 0, stream()>>>(c.data<T>(), rows, n, k, idx.data<int64_t>());
  });
  CW_CUDA_CHECK_LAUNCH("row_topk_kernel");
}

}  // namespace cw::cuda
