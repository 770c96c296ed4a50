// CPU depthwise convolution (groups = Cin = Cout): y[n, c] = w[c] (*) x[n, c], computed directly
// on each channel plane, so no im2col column buffer is ever allocated (see core/ops_conv.cpp).
// Every kernel walks the kh*kw taps and, per tap and output row, the range of output columns
// whose input column falls inside the image: padding is skipped, not read, and with stride 1 the
// innermost loop is a contiguous axpy the compiler vectorizes.
#include <Eigen/Core>
#include <algorithm>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/strided_loop.h"

namespace cw::cpu {
namespace {

template <class T>
using ConstVec = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// Output columns [lo, hi) whose input column ow*sw - pw + kj*dw lies in [0, W).
struct ColumnRange {
  int64_t lo, hi;
};
ColumnRange valid_columns(const ConvGeometry& g, int64_t kj) {
  const int64_t shift = kj * g.dil_w - g.pad_w;  // iw = ow * sw + shift
  // smallest ow with ow * sw + shift >= 0, and one past the largest with ow * sw + shift < W
  const int64_t lo = shift >= 0 ? 0 : (-shift + g.stride_w - 1) / g.stride_w;
  const int64_t hi = g.width - shift <= 0 ? 0 : (g.width - shift - 1) / g.stride_w + 1;
  return {std::min(lo, g.out_w()), std::min(hi, g.out_w())};
}

// One plane: out (OH, OW) += w (kh, kw) (*) x (H, W)  when kForward,
//            x   (H, W)  += w (*)^T out               otherwise (the input gradient).
template <class T, bool kForward>
void plane(T* x, const T* w, T* out, const ConvGeometry& g) {
  const int64_t OH = g.out_h(), OW = g.out_w();
  for (int64_t ki = 0; ki < g.kh; ++ki)
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      const T wk = w[ki * g.kw + kj];
      const ColumnRange r = valid_columns(g, kj);
      const int64_t shift = kj * g.dil_w - g.pad_w;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dil_h;
        if (ih < 0 || ih >= g.height) continue;
        T* xrow = x + ih * g.width;  // xrow[ow * sw + shift] is the input under output ow
        T* orow = out + oh * OW;
        if (g.stride_w == 1) {
          if constexpr (kForward)
            for (int64_t ow = r.lo; ow < r.hi; ++ow) orow[ow] += wk * xrow[ow + shift];
          else
            for (int64_t ow = r.lo; ow < r.hi; ++ow) xrow[ow + shift] += wk * orow[ow];
        } else {
          if constexpr (kForward)
            for (int64_t ow = r.lo; ow < r.hi; ++ow) orow[ow] += wk * xrow[ow * g.stride_w + shift];
          else
            for (int64_t ow = r.lo; ow < r.hi; ++ow) xrow[ow * g.stride_w + shift] += wk * orow[ow];
        }
      }
    }
}

// gw (kh, kw) += sum over the plane of gy (OH, OW) * the inputs each tap saw.
template <class T>
void plane_weight(const T* x, const T* gy, T* gw, const ConvGeometry& g) {
  const int64_t OH = g.out_h(), OW = g.out_w();
  for (int64_t ki = 0; ki < g.kh; ++ki)
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      const ColumnRange r = valid_columns(g, kj);
      const int64_t shift = kj * g.dil_w - g.pad_w;
      T acc = 0;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dil_h;
        if (ih < 0 || ih >= g.height) continue;
        const T* xrow = x + ih * g.width;
        const T* grow = gy + oh * OW;
        if (g.stride_w == 1 && r.hi > r.lo) {
          // A dot product: Eigen sums it in SIMD lanes; a scalar `acc +=` is one dependent chain of
          // adds (the Conformer's 31-tap depthwise backward ran at 10 GFLOP/s that way).
          const int64_t len = r.hi - r.lo;
          acc += (ConstVec<T>(grow + r.lo, len) * ConstVec<T>(xrow + r.lo + shift, len)).sum();
        } else {
          for (int64_t ow = r.lo; ow < r.hi; ++ow) acc += grow[ow] * xrow[ow * g.stride_w + shift];
        }
      }
      gw[ki * g.kw + kj] += acc;
    }
}

}  // namespace

void CpuBackend::depthwise_conv(const Tensor& x, const Tensor& w, const ConvGeometry& g, Tensor& out) {
  dispatch_float(x.dtype(), "depthwise_conv", [&]<class T>() {
    const int64_t N = x.size(0), C = g.channels, plane_in = g.height * g.width;
    const int64_t plane_out = g.out_h() * g.out_w(), taps = g.kh * g.kw;
    T* xp = x.data<T>();
    const T* wp = w.data<T>();
    T* op = out.data<T>();
#pragma omp parallel for schedule(static) if (N * C * plane_out * taps >= kParallelGrain)
    for (int64_t nc = 0; nc < N * C; ++nc) {
      T* o = op + nc * plane_out;
      std::fill(o, o + plane_out, T(0));
      plane<T, true>(xp + nc * plane_in, wp + (nc % C) * taps, o, g);
    }
  });
}

void CpuBackend::depthwise_conv_backward_input(const Tensor& gy, const Tensor& w, const ConvGeometry& g,
                                               Tensor& gx) {
  dispatch_float(gy.dtype(), "depthwise_conv_backward_input", [&]<class T>() {
    const int64_t N = gx.size(0), C = g.channels, plane_in = g.height * g.width;
    const int64_t plane_out = g.out_h() * g.out_w(), taps = g.kh * g.kw;
    T* gxp = gx.data<T>();
    const T* wp = w.data<T>();
    T* gyp = gy.data<T>();
#pragma omp parallel for schedule(static) if (N * C * plane_out * taps >= kParallelGrain)
    for (int64_t nc = 0; nc < N * C; ++nc) {
      T* gxi = gxp + nc * plane_in;
      std::fill(gxi, gxi + plane_in, T(0));
      plane<T, false>(gxi, wp + (nc % C) * taps, gyp + nc * plane_out, g);
    }
  });
}

void CpuBackend::depthwise_conv_backward_weight(const Tensor& gy, const Tensor& x, const ConvGeometry& g,
                                                Tensor& gw) {
  dispatch_float(gy.dtype(), "depthwise_conv_backward_weight", [&]<class T>() {
    const int64_t N = x.size(0), C = g.channels, plane_in = g.height * g.width;
    const int64_t plane_out = g.out_h() * g.out_w(), taps = g.kh * g.kw;
    const T* xp = x.data<T>();
    const T* gyp = gy.data<T>();
    T* gwp = gw.data<T>();
    // One task per channel, images summed in order inside it: deterministic for any thread count.
#pragma omp parallel for schedule(static) if (N * C * plane_out * taps >= kParallelGrain)
    for (int64_t c = 0; c < C; ++c) {
      T* gwc = gwp + c * taps;
      std::fill(gwc, gwc + taps, T(0));
      for (int64_t n = 0; n < N; ++n)
        plane_weight<T>(xp + (n * C + c) * plane_in, gyp + (n * C + c) * plane_out, gwc, g);
    }
  });
}

}  // namespace cw::cpu
