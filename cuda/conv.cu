// CUDA convolution kernels: im2col / col2im for convolutions lowered to GEMM, and the direct
// depthwise convolution (groups = Cin = Cout) with both backward passes. Every kernel writes
// each output element from one thread that gathers its inputs, so nothing needs atomics and the
// results are deterministic:
//   im2col: thread per column entry    cols[n, (c, ki, kj), (oh, ow)] = x[n, c, ih, iw] or 0
//   col2im: thread per pixel           x[n, c, ih, iw] = sum of the column entries that read it
//   depthwise forward: thread per output pixel, sum over the kh*kw taps
//   depthwise input grad: thread per input pixel, sum over the taps and outputs that read it
//   depthwise weight grad: block per (channel, tap), block-wide sum over images and pixels
// Geometry as core/cpu/cpu_conv.cpp: ih = oh*sh - ph + ki*dh, iw = ow*sw - pw + kj*dw.
#include "cuda/conv_math.h"
#include "cuda/cuda_backend.h"
#include "cuda/launch.cuh"

namespace cw::cuda {
namespace {

#define CW_GRID_LOOP(i, n)                                                  \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); \
       i += int64_t{gridDim.x} * blockDim.x)

template <class T>
__global__ void im2col_kernel(const T* x, T* cols, int64_t total, Geo g) {
  CW_GRID_LOOP(i, total) cols[i] = im2col_at(x, i, g);
}

template <class T>
__global__ void col2im_kernel(const T* cols, T* x, int64_t total, Geo g) {
  CW_GRID_LOOP(i, total) x[i] = col2im_at(cols, i, g);
}

template <class T>
__global__ void depthwise_forward_kernel(const T* x, const T* w, T* out, int64_t total, Geo g) {
  CW_GRID_LOOP(i, total) out[i] = depthwise_forward_at(x, w, i, g);
}

template <class T>
__global__ void depthwise_backward_input_kernel(const T* gy, const T* w, T* gx, int64_t total, Geo g) {
  CW_GRID_LOOP(i, total) gx[i] = depthwise_input_grad_at(gy, w, i, g);
}

// Block b computes gw[b], b = (c*kh + ki)*kw + kj; the block's threads stride over the N*OH*OW
// terms. Accumulates in double: a tap's sum runs over every image and output pixel.
template <class T>
__global__ void depthwise_backward_weight_kernel(const T* gy, const T* x, T* gw, int64_t N, Geo g) {
  const int64_t b = blockIdx.x, terms = N * g.OH * g.OW;
  double acc = 0;
  for (int64_t j = threadIdx.x; j < terms; j += blockDim.x) acc += depthwise_weight_grad_term(gy, x, b, j, g);
  acc = block_reduce(acc, SumOp{}, 0.0);
  if (threadIdx.x == 0) gw[b] = static_cast<T>(acc);
}

}  // namespace

void CudaBackend::im2col(const Tensor& x, const ConvGeometry& geo, Tensor& cols) {
  const int64_t total = cols.numel();
  if (total == 0) return;
  DeviceGuard g(x.device());
  dispatch_cuda<false>(x.dtype(), "im2col", [&](auto tag) {
    using T = decltype(tag);
    im2col_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(cols.raw_data()), total, geo_of(geo));
  });
  CW_CUDA_CHECK_LAUNCH("im2col_kernel");
}

void CudaBackend::col2im(const Tensor& cols, const ConvGeometry& geo, Tensor& x) {
  const int64_t total = x.numel();
  if (total == 0) return;
  DeviceGuard g(x.device());
  dispatch_cuda<false>(x.dtype(), "col2im", [&](auto tag) {
    using T = decltype(tag);
    col2im_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(cols.raw_data()), static_cast<T*>(x.raw_data()), total, geo_of(geo));
  });
  CW_CUDA_CHECK_LAUNCH("col2im_kernel");
}

void CudaBackend::depthwise_conv(const Tensor& x, const Tensor& w, const ConvGeometry& geo, Tensor& out) {
  const int64_t total = out.numel();
  if (total == 0) return;
  DeviceGuard g(x.device());
  dispatch_cuda<false>(x.dtype(), "depthwise_conv", [&](auto tag) {
    using T = decltype(tag);
    depthwise_forward_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(w.raw_data()),
        static_cast<T*>(out.raw_data()), total, geo_of(geo));
  });
  CW_CUDA_CHECK_LAUNCH("depthwise_forward_kernel");
}

void CudaBackend::depthwise_conv_backward_input(const Tensor& gy, const Tensor& w, const ConvGeometry& geo,
                                                Tensor& gx) {
  const int64_t total = gx.numel();
  if (total == 0) return;
  DeviceGuard g(gx.device());
  dispatch_cuda<false>(gy.dtype(), "depthwise_conv_backward_input", [&](auto tag) {
    using T = decltype(tag);
    depthwise_backward_input_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(gy.raw_data()), static_cast<const T*>(w.raw_data()),
        static_cast<T*>(gx.raw_data()), total, geo_of(geo));
  });
  CW_CUDA_CHECK_LAUNCH("depthwise_backward_input_kernel");
}

void CudaBackend::depthwise_conv_backward_weight(const Tensor& gy, const Tensor& x, const ConvGeometry& geo,
                                                 Tensor& gw) {
  const int64_t blocks = gw.numel();  // C * kh * kw
  if (blocks == 0) return;
  DeviceGuard g(x.device());
  CW_CHECK(blocks < (int64_t{1} << 31), NotImplementedError, "depthwise_conv_backward_weight: ", blocks,
           " taps is too many for one grid on cuda");
  dispatch_cuda<false>(gy.dtype(), "depthwise_conv_backward_weight", [&](auto tag) {
    using T = decltype(tag);
    depthwise_backward_weight_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream()>>>(
        static_cast<const T*>(gy.raw_data()), static_cast<const T*>(x.raw_data()),
        static_cast<T*>(gw.raw_data()), x.size(0), geo_of(geo));
  });
  CW_CUDA_CHECK_LAUNCH("depthwise_backward_weight_kernel");
}

}  // namespace cw::cuda
