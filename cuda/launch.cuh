// Kernel-launch helpers shared by the .cu files: grid sizing, block reductions, dtype dispatch
// (the strided index math is in strided.h). Internal to cuda/.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>

#include "core/tensor.h"
#include "cuda/context.h"
#include "cuda/cuda_error.h"
#include "cuda/strided.h"

namespace cw::cuda {

constexpr int kThreads = 256;

inline unsigned grid_for(int64_t n, int threads = kThreads) {
  // A grid-stride loop covers the rest; 2^20 blocks is far beyond what fills an H200.
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > (1 << 20) ? (1 << 20) : blocks));
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

// Threads for a kernel that gives one block to each row of n elements: enough to cover short rows
// with few idle lanes, at most max_threads (a power of two, 32 to 1024).
inline unsigned row_threads(int64_t n, unsigned max_threads = 1024) {
  unsigned t = 32;
  while (t < max_threads && t < n) t *= 2;
  return t;
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
struct MinOp {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a < b ? a : b;
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
