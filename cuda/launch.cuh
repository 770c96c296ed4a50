// Kernel-launch helpers shared by the .cu files: grid sizing, the strided offset calculator
// (linear element index -> element offset of each operand), block reductions, dtype dispatch.
// Internal to cuda/.
//
// OffsetCalc is the device twin of core/cpu/strided_loop.h: dims that are contiguous in every
// operand are merged on the host first, so a contiguous or simply broadcast operand costs one
// division per element, and an all-contiguous op takes the Contig path with no index math.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>

#include "core/tensor.h"
#include "cuda/context.h"
#include "cuda/cuda_error.h"

namespace cw::cuda {

constexpr int kMaxDims = 12;  // after merging; more throws NotImplementedError
constexpr int kThreads = 256;

inline unsigned grid_for(int64_t n, int threads = kThreads) {
  // A grid-stride loop covers the rest; 2^20 blocks is far beyond what fills an H200.
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > (1 << 20) ? (1 << 20) : blocks));
}

template <int N>
struct OffsetCalc {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];

  __device__ __forceinline__ void get(int64_t linear, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
  }
};

// Builds the calculator for operands of one shape; `contiguous` is set when every operand
// walks memory with stride 1 in element order (the Contig fast path applies).
template <int N>
OffsetCalc<N> make_offset_calc(const Shape& shape, const std::array<const Strides*, N>& strides, bool& contiguous,
                               const char* op) {
  OffsetCalc<N> c;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = c.ndim > 0;
    for (int k = 0; k < N && merge; ++k) merge = c.strides[k][c.ndim - 1] == (*strides[k])[d] * shape[d];
    if (merge) {
      c.sizes[c.ndim - 1] *= shape[d];
      for (int k = 0; k < N; ++k) c.strides[k][c.ndim - 1] = (*strides[k])[d];
    } else {
      CW_CHECK(c.ndim < kMaxDims, NotImplementedError, op, ": more than ", kMaxDims,
               " non-mergeable dims on cuda (shape ", shape_str(shape), ")");
      c.sizes[c.ndim] = shape[d];
      for (int k = 0; k < N; ++k) c.strides[k][c.ndim] = (*strides[k])[d];
      ++c.ndim;
    }
  }
  if (c.ndim == 0) {  // a scalar or all-ones shape: one element
    c.ndim = 1;
    c.sizes[0] = 1;
    for (int k = 0; k < N; ++k) c.strides[k][0] = 1;
  }
  contiguous = c.ndim == 1;
  for (int k = 0; k < N && contiguous; ++k) contiguous = c.strides[k][0] == 1;
  return c;
}

// ---- dispatch: fn gets a value of T = float, double (or int64_t when AllowInt), as core's
// dispatch_float / dispatch_all do with a template lambda ----
template <bool AllowInt, class F>
void dispatch_cuda(DType dt, const char* op, F&& fn) {
  switch (dt) {
    case DType::F32: fn(float{}); return;
    case DType::F64: fn(double{}); return;
    case DType::I64:
      if constexpr (AllowInt) {
        fn(int64_t{});
        return;
      }
      break;
  }
  throw DTypeError(::cw::detail::cat(op, ": dtype ", dtype_name(dt), " is not supported on cuda"));
}

// ---- block reductions (blockDim.x a multiple of 32, at most 1024) ----
struct SumOp {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct MaxOp {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a > b ? a : b;
  }
};

template <class T, class Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Every thread of the block gets the result. Uses 32 T of shared memory; syncs twice, so it
// may be called repeatedly in one kernel.
template <class T, class Op>
__device__ __forceinline__ T block_reduce(T v, Op op, T identity) {
  __shared__ T shared[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = (blockDim.x + 31) / 32;
  v = warp_reduce(v, op);
  __syncthreads();  // the previous call's readers are done with `shared`
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : identity;
  return warp_reduce(v, op);
}

}  // namespace cw::cuda
