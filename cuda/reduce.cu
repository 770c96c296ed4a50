// CUDA reductions over the middle axis of a contiguous (outer, r, inner) view, as the CPU
// backend: Sum, Mean, Max, Min (NaN propagates), ArgMax (first maximum; a NaN wins). f32 sums
// accumulate in double, like the CPU's.
//
// Two layouts, each with a split into two passes when one pass would leave the GPU idle:
//   inner == 1 (rows, e.g. a last-dim sum or a full sum): one block per row, its threads
//     striding over the row and meeting in a block reduction. A few long rows are cut into
//     `splits` chunks, one block each, whose partials a second (column) pass combines.
//   inner > 1 (columns, e.g. a bias gradient, sum over dim 0 of (B*T, C)): one thread per
//     output, reading coalesced across inner. When outer*inner threads are too few for r (C =
//     384 outputs over 65536 rows), r is cut into chunks whose partials a second pass combines.
#include <climits>

#include "cuda/cuda_backend.h"
#include "cuda/launch.cuh"
#include "cuda/reduce_math.h"

namespace cw::cuda {
namespace {

// Block (o, s) reduces chunk s of row o. Final: writes out[o] (T); else the partial
// part[s * outer + o] (A), for reduce_cols to combine.
template <class T, bool Final>
__global__ void reduce_rows_kernel(ReduceOp op, const T* x, void* dst, int64_t outer, int64_t r,
                                   int64_t chunk) {
  using A = AccT<T>;
  const Combine<A> comb{op};
  const int64_t o = blockIdx.x, s = blockIdx.y;
  const int64_t i0 = s * chunk, i1 = min(r, i0 + chunk);
  const T* row = x + o * r;
  A acc = comb.identity();
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) acc = comb(acc, static_cast<A>(row[i]));
  acc = block_reduce(acc, comb, comb.identity());
  if (threadIdx.x != 0) return;
  if constexpr (Final)
    static_cast<T*>(dst)[o] = finalize<A, T>(op, acc, r);
  else
    static_cast<A*>(dst)[s * outer + o] = acc;
}

// Thread per output (o, j) over i in [s*chunk, (s+1)*chunk) of (outer, r, inner) input In.
// Final: out[o*inner + j] = finalize(acc, count) (T); else part[s*outer*inner + o*inner + j] (A).
template <class In, class T, bool Final>
__global__ void reduce_cols_kernel(ReduceOp op, const In* x, void* dst, int64_t outer, int64_t r,
                                   int64_t inner, int64_t chunk, int64_t count) {
  using A = AccT<T>;
  const Combine<A> comb{op};
  const int64_t n = outer * inner, s = blockIdx.y;
  const int64_t i0 = s * chunk, i1 = min(r, i0 + chunk);
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < n;
       t += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = t / inner, j = t % inner;
    const In* base = x + o * r * inner + j;
    A acc = comb.identity();
    for (int64_t i = i0; i < i1; ++i) acc = comb(acc, static_cast<A>(base[i * inner]));
    if constexpr (Final)
      static_cast<T*>(dst)[t] = finalize<A, T>(op, acc, count);
    else
      static_cast<A*>(dst)[s * n + t] = acc;
  }
}

template <class T>
__global__ void argmax_rows_kernel(const T* x, int64_t* out, int64_t r) {
  __shared__ T sv[1024];
  __shared__ int64_t si[1024];
  const T* row = x + blockIdx.x * r;
  T best = lowest<T>();
  int64_t bi = LLONG_MAX;
  for (int64_t i = threadIdx.x; i < r; i += blockDim.x)
    if (better(row[i], i, best, bi)) {
      best = row[i];
      bi = i;
    }
  sv[threadIdx.x] = best;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s &&
        better(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x])) {
      sv[threadIdx.x] = sv[threadIdx.x + s];
      si[threadIdx.x] = si[threadIdx.x + s];
    }
    __syncthreads();
  }
  // All -inf (or all LLONG_MIN): the CPU answers index 0, and so does the tie rule, unless the
  // row had no element better than the sentinel pair; then bi stays LLONG_MAX.
  if (threadIdx.x == 0) out[blockIdx.x] = si[0] == LLONG_MAX ? 0 : si[0];
}

template <class T>
__global__ void argmax_cols_kernel(const T* x, int64_t* out, int64_t outer, int64_t r, int64_t inner) {
  const int64_t n = outer * inner;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < n;
       t += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = t / inner, j = t % inner;
    const T* base = x + o * r * inner + j;
    T best = base[0];
    int64_t bi = 0;
    for (int64_t i = 1; i < r; ++i)
      if (better(base[i * inner], i, best, bi)) {
        best = base[i * inner];
        bi = i;
      }
    out[t] = bi;
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Threads worth launching: beyond this, more splits only add partial traffic.
constexpr int64_t kTargetThreads = 1 << 16;

template <class T>
void reduce_typed(ReduceOp op, const Tensor& x, Tensor& out, int64_t outer, int64_t r, int64_t inner) {
  using A = AccT<T>;
  const T* px = static_cast<const T*>(x.raw_data());
  void* po = out.raw_data();
  const int64_t n = outer * inner;
  if (op == ReduceOp::ArgMax) {
    int64_t* pi = static_cast<int64_t*>(po);
    if (inner == 1)
      argmax_rows_kernel<T><<<static_cast<unsigned>(outer), kThreads, 0, stream()>>>(px, pi, r);
    else
      argmax_cols_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(px, pi, outer, r, inner);
    return;
  }
  if (inner == 1) {
    // Rows: split only when there are few, long rows.
    const int64_t splits =
        outer >= 256 ? 1 : std::min<int64_t>(1024, std::max<int64_t>(1, ceil_div(r, 8192)));
    if (splits == 1) {
      reduce_rows_kernel<T, true>
          <<<dim3(static_cast<unsigned>(outer), 1), kThreads, 0, stream()>>>(op, px, po, outer, r, r);
      return;
    }
    Tensor part =
        Tensor::empty({splits, outer}, x.dtype() == DType::F32 ? DType::F64 : x.dtype(), x.device());
    const int64_t chunk = ceil_div(r, splits);
    reduce_rows_kernel<T, false>
        <<<dim3(static_cast<unsigned>(outer), static_cast<unsigned>(splits)), kThreads, 0, stream()>>>(
            op, px, part.raw_data(), outer, r, chunk);
    reduce_cols_kernel<A, T, true><<<grid_for(outer), kThreads, 0, stream()>>>(
        op, static_cast<const A*>(part.raw_data()), po, 1, splits, outer, splits, r);
    return;
  }
  // Columns.
  const int64_t splits = std::min<int64_t>({1024, std::max<int64_t>(1, ceil_div(r, 32)),
                                            std::max<int64_t>(1, kTargetThreads / std::max<int64_t>(n, 1))});
  if (splits == 1) {
    reduce_cols_kernel<T, T, true><<<grid_for(n), kThreads, 0, stream()>>>(op, px, po, outer, r, inner, r, r);
    return;
  }
  Tensor part = Tensor::empty({splits, n}, x.dtype() == DType::F32 ? DType::F64 : x.dtype(), x.device());
  const int64_t chunk = ceil_div(r, splits);
  reduce_cols_kernel<T, T, false>
      <<<dim3(grid_for(n), static_cast<unsigned>(splits)), kThreads, 0, stream()>>>(
          op, px, part.raw_data(), outer, r, inner, chunk, r);
  reduce_cols_kernel<A, T, true><<<grid_for(n), kThreads, 0, stream()>>>(
      op, static_cast<const A*>(part.raw_data()), po, 1, splits, n, splits, r);
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const Tensor& x, Tensor& out, int64_t outer, int64_t r, int64_t inner) {
  if (outer * inner == 0) return;
  DeviceGuard g(x.device());
  CW_CHECK(outer < (int64_t{1} << 31), NotImplementedError, "reduce: ", outer,
           " rows is too many for one grid on cuda");
  dispatch_cuda<true>(x.dtype(), "reduce",
                      [&](auto tag) { reduce_typed<decltype(tag)>(op, x, out, outer, r, inner); });
  CW_CUDA_CHECK_LAUNCH("reduce kernels");
}

}  // namespace cw::cuda
