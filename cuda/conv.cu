// CUDA convolution kernels: im2col / col2im for convolutions lowered to GEMM, and the direct
// depthwise convolution (groups = Cin = Cout) with both backward passes. Every kernel writes
// each output element from one thread that gathers its inputs, so nothing needs atomics and the
// results are deterministic:
//   im2col: thread per column entry    cols[n, (c, ki, kj), (oh, ow)] = x[n, c, ih, iw] or 0
//   col2im: thread per pixel           x[n, c, ih, iw] += sum of the column entries that read it
//   depthwise forward: thread per output pixel, sum over the kh*kw taps
//   depthwise input grad: thread per input pixel, sum over the taps and outputs that read it
//   depthwise weight grad: block per (channel, tap), block-wide sum over images and pixels
// Geometry as core/cpu/cpu_conv.cpp: ih = oh*sh - ph + ki*dh, iw = ow*sw - pw + kj*dw.
#include "cuda/cuda_backend.h"
#include "cuda/launch.cuh"

namespace cw::cuda {
namespace {

// The geometry as plain ints for the kernels.
struct Geo {
  int64_t C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW;
};
Geo geo_of(const ConvGeometry& g) {
  return {g.channels, g.height, g.width, g.kh,    g.kw,      g.stride_h, g.stride_w,
          g.pad_h,    g.pad_w,  g.dil_h, g.dil_w, g.out_h(), g.out_w()};
}

#define CW_GRID_LOOP(i, n) \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); i += int64_t{gridDim.x} * blockDim.x)

template <class T>
__global__ void im2col_kernel(const T* x, T* cols, int64_t total, Geo g) {
  CW_GRID_LOOP(i, total) {
    // i = ((n*C + c)*kh*kw + ki*kw + kj)*L + oh*OW + ow
    const int64_t ow = i % g.OW;
    int64_t t = i / g.OW;
    const int64_t oh = t % g.OH;
    t /= g.OH;
    const int64_t kj = t % g.kw;
    t /= g.kw;
    const int64_t ki = t % g.kh;
    const int64_t nc = t / g.kh;
    const int64_t ih = oh * g.sh - g.ph + ki * g.dh, iw = ow * g.sw - g.pw + kj * g.dw;
    cols[i] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[(nc * g.H + ih) * g.W + iw] : T(0);
  }
}

// The output positions (along one axis) whose receptive field puts tap k on input position i:
// o * s - p + k * d == i, 0 <= o < O. Returns -1 when there is none.
__device__ __forceinline__ int64_t out_pos(int64_t i, int64_t k, int64_t s, int64_t p, int64_t d, int64_t O) {
  const int64_t num = i + p - k * d;
  if (num < 0 || num % s != 0) return -1;
  const int64_t o = num / s;
  return o < O ? o : -1;
}

template <class T>
__global__ void col2im_kernel(const T* cols, T* x, int64_t total, Geo g) {
  const int64_t L = g.OH * g.OW;
  CW_GRID_LOOP(i, total) {
    const int64_t iw = i % g.W;
    const int64_t ih = (i / g.W) % g.H;
    const int64_t nc = i / (g.W * g.H);
    T acc = 0;
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      const int64_t oh = out_pos(ih, ki, g.sh, g.ph, g.dh, g.OH);
      if (oh < 0) continue;
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const int64_t ow = out_pos(iw, kj, g.sw, g.pw, g.dw, g.OW);
        if (ow < 0) continue;
        acc += cols[(nc * g.kh * g.kw + ki * g.kw + kj) * L + oh * g.OW + ow];
      }
    }
    x[i] += acc;
  }
}

template <class T>
__global__ void depthwise_forward_kernel(const T* x, const T* w, T* out, int64_t total, Geo g) {
  CW_GRID_LOOP(i, total) {
    const int64_t ow = i % g.OW;
    const int64_t oh = (i / g.OW) % g.OH;
    const int64_t nc = i / (g.OW * g.OH);
    const int64_t c = nc % g.C;
    const T* xp = x + nc * g.H * g.W;
    const T* wp = w + c * g.kh * g.kw;
    T acc = 0;
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      const int64_t ih = oh * g.sh - g.ph + ki * g.dh;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const int64_t iw = ow * g.sw - g.pw + kj * g.dw;
        if (iw >= 0 && iw < g.W) acc += wp[ki * g.kw + kj] * xp[ih * g.W + iw];
      }
    }
    out[i] = acc;
  }
}

template <class T>
__global__ void depthwise_backward_input_kernel(const T* gy, const T* w, T* gx, int64_t total, Geo g) {
  CW_GRID_LOOP(i, total) {
    const int64_t iw = i % g.W;
    const int64_t ih = (i / g.W) % g.H;
    const int64_t nc = i / (g.W * g.H);
    const int64_t c = nc % g.C;
    const T* gp = gy + nc * g.OH * g.OW;
    const T* wp = w + c * g.kh * g.kw;
    T acc = 0;
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      const int64_t oh = out_pos(ih, ki, g.sh, g.ph, g.dh, g.OH);
      if (oh < 0) continue;
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const int64_t ow = out_pos(iw, kj, g.sw, g.pw, g.dw, g.OW);
        if (ow >= 0) acc += wp[ki * g.kw + kj] * gp[oh * g.OW + ow];
      }
    }
    gx[i] = acc;
  }
}

// Block b computes gw[c, ki, kj] with b = c*kh*kw + ki*kw + kj; the block's threads stride over
// (n, oh, ow). Accumulates in double: a tap's sum runs over every image and output pixel.
template <class T>
__global__ void depthwise_backward_weight_kernel(const T* gy, const T* x, T* gw, int64_t N, Geo g) {
  const int64_t b = blockIdx.x;
  const int64_t kj = b % g.kw, ki = (b / g.kw) % g.kh, c = b / (g.kw * g.kh);
  const int64_t per_image = g.OH * g.OW;
  double acc = 0;
  for (int64_t j = threadIdx.x; j < N * per_image; j += blockDim.x) {
    const int64_t n = j / per_image, p = j % per_image, oh = p / g.OW, ow = p % g.OW;
    const int64_t ih = oh * g.sh - g.ph + ki * g.dh, iw = ow * g.sw - g.pw + kj * g.dw;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
    const int64_t nc = n * g.C + c;
    acc += static_cast<double>(gy[nc * per_image + p]) * static_cast<double>(x[(nc * g.H + ih) * g.W + iw]);
  }
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
    im2col_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(static_cast<const T*>(x.raw_data()),
                                                                 static_cast<T*>(cols.raw_data()), total, geo_of(geo));
  });
  CW_CUDA_CHECK_LAUNCH("im2col_kernel");
}

void CudaBackend::col2im(const Tensor& cols, const ConvGeometry& geo, Tensor& x) {
  const int64_t total = x.numel();
  if (total == 0) return;
  DeviceGuard g(x.device());
  dispatch_cuda<false>(x.dtype(), "col2im", [&](auto tag) {
    using T = decltype(tag);
    col2im_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(static_cast<const T*>(cols.raw_data()),
                                                                 static_cast<T*>(x.raw_data()), total, geo_of(geo));
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
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(w.raw_data()), static_cast<T*>(out.raw_data()),
        total, geo_of(geo));
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
        static_cast<const T*>(gy.raw_data()), static_cast<const T*>(w.raw_data()), static_cast<T*>(gx.raw_data()),
        total, geo_of(geo));
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
        static_cast<const T*>(gy.raw_data()), static_cast<const T*>(x.raw_data()), static_cast<T*>(gw.raw_data()),
        x.size(0), geo_of(geo));
  });
  CW_CUDA_CHECK_LAUNCH("depthwise_backward_weight_kernel");
}

}  // namespace cw::cuda
