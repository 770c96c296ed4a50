// The per-element index math of the convolution kernels (conv.cu): what one thread computes for
// one output element of im2col, col2im and the depthwise convolution and its gradients. Host
// and device, so tests/cuda/kernel_math_test.cpp checks it on the CPU against the CPU backend.
// Geometry as core/cpu/cpu_conv.cpp: ih = oh*sh - ph + ki*dh, iw = ow*sw - pw + kj*dw.
// Internal to cuda/.
#pragma once

#include <cstdint>

#include "core/backend.h"
#include "core/host_device.h"

namespace cw::cuda {

// The geometry as plain integers, passed to the kernels by value.
struct Geo {
  int64_t C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW;
};
inline Geo geo_of(const ConvGeometry& g) {
  return {g.channels, g.height, g.width, g.kh,    g.kw,      g.stride_h, g.stride_w,
          g.pad_h,    g.pad_w,  g.dil_h, g.dil_w, g.out_h(), g.out_w()};
}

// The output position (along one axis) whose receptive field puts tap k on input position i:
// o * s - p + k * d == i with 0 <= o < O, or -1 when there is none.
CW_HD int64_t out_pos(int64_t i, int64_t k, int64_t s, int64_t p, int64_t d, int64_t O) {
  const int64_t num = i + p - k * d;
  if (num < 0 || num % s != 0) return -1;
  const int64_t o = num / s;
  return o < O ? o : -1;
}

// cols[i], i = ((n*C + c)*kh*kw + ki*kw + kj)*L + oh*OW + ow: the input pixel it reads, or 0.
template <class T>
CW_HD T im2col_at(const T* x, int64_t i, const Geo& g) {
  const int64_t ow = i % g.OW;
  int64_t t = i / g.OW;
  const int64_t oh = t % g.OH;
  t /= g.OH;
  const int64_t kj = t % g.kw;
  t /= g.kw;
  const int64_t ki = t % g.kh;
  const int64_t nc = t / g.kh;
  const int64_t ih = oh * g.sh - g.ph + ki * g.dh, iw = ow * g.sw - g.pw + kj * g.dw;
  return (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[(nc * g.H + ih) * g.W + iw] : T(0);
}

// Pixel i = (n*C + c)*H*W + ih*W + iw of x: the sum of the column entries that read it.
template <class T>
CW_HD T col2im_at(const T* cols, int64_t i, const Geo& g) {
  const int64_t L = g.OH * g.OW;
  const int64_t iw = i % g.W, ih = (i / g.W) % g.H, nc = i / (g.W * g.H);
  T acc = 0;
  for (int64_t ki = 0; ki < g.kh; ++ki) {
    const int64_t oh = out_pos(ih, ki, g.sh, g.ph, g.dh, g.OH);
    if (oh < 0) continue;
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      const int64_t ow = out_pos(iw, kj, g.sw, g.pw, g.dw, g.OW);
      if (ow >= 0) acc += cols[(nc * g.kh * g.kw + ki * g.kw + kj) * L + oh * g.OW + ow];
    }
  }
  return acc;
}

// Depthwise output i = (n*C + c)*OH*OW + oh*OW + ow: sum over the taps of w[c] * input.
template <class T>
CW_HD T depthwise_forward_at(const T* x, const T* w, int64_t i, const Geo& g) {
  const int64_t ow = i % g.OW, oh = (i / g.OW) % g.OH, nc = i / (g.OW * g.OH), c = nc % g.C;
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
  return acc;
}

// Depthwise input gradient at pixel i: sum over taps and the outputs that read the pixel.
template <class T>
CW_HD T depthwise_input_grad_at(const T* gy, const T* w, int64_t i, const Geo& g) {
  const int64_t iw = i % g.W, ih = (i / g.W) % g.H, nc = i / (g.W * g.H), c = nc % g.C;
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
  return acc;
}

// Term j in [0, N*OH*OW) of the weight gradient of tap b = (c*kh + ki)*kw + kj: gy at output
// j of channel c times the input that tap saw there (0 outside the image).
template <class T>
CW_HD double depthwise_weight_grad_term(const T* gy, const T* x, int64_t b, int64_t j, const Geo& g) {
  const int64_t kj = b % g.kw, ki = (b / g.kw) % g.kh, c = b / (g.kw * g.kh);
  const int64_t per_image = g.OH * g.OW;
  const int64_t n = j / per_image, p = j % per_image, oh = p / g.OW, ow = p % g.OW;
  const int64_t ih = oh * g.sh - g.ph + ki * g.dh, iw = ow * g.sw - g.pw + kj * g.dw;
  if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return 0.0;
  const int64_t nc = n * g.C + c;
  return static_cast<double>(gy[nc * per_image + p]) * static_cast<double>(x[(nc * g.H + ih) * g.W + iw]);
}

}  // namespace cw::cuda
