// CUDA elementwise kernels: unary functions and their derivatives, broadcasting binary ops and
// where. One grid-stride kernel per family; the op is a runtime switch (uniform across a warp,
// so it costs a branch, not divergence), which keeps the number of instantiations (and nvcc
// time) small. Operands are read through OffsetCalc (any strides, stride 0 where broadcast)
// unless all are contiguous. The per-element functions are core/elementwise_math.h's, shared
// with the CPU backend.
#include "core/elementwise_math.h"
#include "cuda/cuda_backend.h"
#include "cuda/launch.cuh"

namespace cw::cuda {
namespace {

#define CW_GRID_LOOP(i, n)                                                  \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); \
       i += int64_t{gridDim.x} * blockDim.x)

template <class T, bool Contig>
__global__ void unary_kernel(UnaryOp op, const T* x, T* out, int64_t n, double p, OffsetCalc<2> calc) {
  CW_GRID_LOOP(i, n) {
    if constexpr (Contig) {
      out[i] = unary_fn<T>(op, x[i], p);
    } else {
      int64_t off[2];
      calc.get(i, off);
      out[off[0]] = unary_fn<T>(op, x[off[1]], p);
    }
  }
}

// Operand order: gx, x, y, gy.
template <class T, bool Contig>
__global__ void unary_backward_kernel(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, int64_t n,
                                      double p, OffsetCalc<4> calc) {
  CW_GRID_LOOP(i, n) {
    if constexpr (Contig) {
      gx[i] = gy[i] * unary_grad<T>(op, x[i], y[i], p);
    } else {
      int64_t off[4];
      calc.get(i, off);
      gx[off[0]] = gy[off[3]] * unary_grad<T>(op, x[off[1]], y[off[2]], p);
    }
  }
}

template <class T, bool Contig>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n, OffsetCalc<3> calc) {
  CW_GRID_LOOP(i, n) {
    if constexpr (Contig) {
      out[i] = binary_fn<T>(op, a[i], b[i]);
    } else {
      int64_t off[3];
      calc.get(i, off);
      out[off[0]] = binary_fn<T>(op, a[off[1]], b[off[2]]);
    }
  }
}

template <class T, class C>
__global__ void where_kernel(const C* cond, const T* a, const T* b, T* out, int64_t n, OffsetCalc<4> calc) {
  CW_GRID_LOOP(i, n) {
    int64_t off[4];
    calc.get(i, off);
    out[off[0]] = cond[off[1]] != C(0) ? a[off[2]] : b[off[3]];
  }
}

}  // namespace

void CudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double p) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard g(out.device());
  bool contig = false;
  const auto calc =
      make_offset_calc<2>(out.shape(), {&out.strides(), &x.strides()}, contig, unary_op_name(op));
  dispatch_cuda<true>(x.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    if (contig)
      unary_kernel<T, true><<<grid_for(n), kThreads, 0, stream()>>>(op, px, po, n, p, calc);
    else
      unary_kernel<T, false><<<grid_for(n), kThreads, 0, stream()>>>(op, px, po, n, p, calc);
  });
  CW_CUDA_CHECK_LAUNCH("unary_kernel");
}

void CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                 double p) {
  const int64_t n = gx.numel();
  if (n == 0) return;
  DeviceGuard g(gx.device());
  // y is only read by ops whose derivative uses it; others may pass an undefined y.
  const Tensor& yy = y.defined() ? y : x;
  bool contig = false;
  const auto calc = make_offset_calc<4>(
      gx.shape(), {&gx.strides(), &x.strides(), &yy.strides(), &gy.strides()}, contig, unary_op_name(op));
  dispatch_cuda<false>(x.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw_data());
    const T* py = static_cast<const T*>(yy.raw_data());
    const T* pg = static_cast<const T*>(gy.raw_data());
    T* po = static_cast<T*>(gx.raw_data());
    if (contig)
      unary_backward_kernel<T, true><<<grid_for(n), kThreads, 0, stream()>>>(op, px, py, pg, po, n, p, calc);
    else
      unary_backward_kernel<T, false><<<grid_for(n), kThreads, 0, stream()>>>(op, px, py, pg, po, n, p, calc);
  });
  CW_CUDA_CHECK_LAUNCH("unary_backward_kernel");
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard g(out.device());
  bool contig = false;
  const auto calc = make_offset_calc<3>(out.shape(), {&out.strides(), &a.strides(), &b.strides()}, contig,
                                        binary_op_name(op));
  dispatch_cuda<true>(a.dtype(), binary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    if (contig)
      binary_kernel<T, true><<<grid_for(n), kThreads, 0, stream()>>>(op, pa, pb, po, n, calc);
    else
      binary_kernel<T, false><<<grid_for(n), kThreads, 0, stream()>>>(op, pa, pb, po, n, calc);
  });
  CW_CUDA_CHECK_LAUNCH("binary_kernel");
}

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard g(out.device());
  bool contig = false;
  const auto calc = make_offset_calc<4>(
      out.shape(), {&out.strides(), &cond.strides(), &a.strides(), &b.strides()}, contig, "where");
  dispatch_cuda<true>(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    dispatch_cuda<true>(cond.dtype(), "where", [&](auto ctag) {
      using C = decltype(ctag);
      where_kernel<T, C><<<grid_for(n), kThreads, 0, stream()>>>(
          static_cast<const C*>(cond.raw_data()), static_cast<const T*>(a.raw_data()),
          static_cast<const T*>(b.raw_data()), static_cast<T*>(out.raw_data()), n, calc);
    });
  });
  CW_CUDA_CHECK_LAUNCH("where_kernel");
}

}  // namespace cw::cuda
