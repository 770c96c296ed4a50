// CPU im2col / col2im for convolutions lowered to GEMM (see core/ops_conv.cpp).
// cols[n, (c, ki, kj), (oh, ow)] = x[n, c, oh*sh - ph + ki*dh, ow*sw - pw + kj*dw], 0 outside.
// col2im is its adjoint: it adds every column entry back into the pixel it was read from, into a
// plane it zeroes first (inside the task, while the plane is in cache: a separate zeroing pass over
// the whole gradient cost as much as the folding itself, 125 ms a Conformer step).
// Both run in parallel over (image, channel): each task touches only its own channel plane.
#include <algorithm>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/strided_loop.h"

namespace cw::cpu {
namespace {

template <class T, bool kToCols>
void lower(T* img, T* cols, int64_t batch, const ConvGeometry& g) {
  const int64_t OH = g.out_h(), OW = g.out_w(), L = OH * OW, plane = g.height * g.width;
  const int64_t K = g.kh * g.kw;
#pragma omp parallel for schedule(static) if (batch * g.channels * K * L >= kParallelGrain)
  for (int64_t nc = 0; nc < batch * g.channels; ++nc) {
    T* x = img + nc * plane;
    T* colbase = cols + nc * K * L;  // rows (c, ki, kj) of image n are consecutive
    if constexpr (!kToCols) std::fill(x, x + plane, T(0));
    for (int64_t ki = 0; ki < g.kh; ++ki)
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        T* col = colbase + (ki * g.kw + kj) * L;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t ih = oh * g.stride_h - g.pad_h + ki * g.dil_h;
          T* crow = col + oh * OW;
          if (ih < 0 || ih >= g.height) {
            if constexpr (kToCols)
              for (int64_t ow = 0; ow < OW; ++ow) crow[ow] = T(0);
            continue;
          }
          const T* xrow = x + ih * g.width;
          for (int64_t ow = 0; ow < OW; ++ow) {
            const int64_t iw = ow * g.stride_w - g.pad_w + kj * g.dil_w;
            const bool inside = iw >= 0 && iw < g.width;
            if constexpr (kToCols)
              crow[ow] = inside ? xrow[iw] : T(0);
            else if (inside)
              x[ih * g.width + iw] += crow[ow];
          }
        }
      }
  }
}

}  // namespace

void CpuBackend::im2col(const Tensor& x, const ConvGeometry& g, Tensor& cols) {
  dispatch_float(x.dtype(), "im2col",
                 [&]<class T>() { lower<T, true>(x.data<T>(), cols.data<T>(), x.size(0), g); });
}

void CpuBackend::col2im(const Tensor& cols, const ConvGeometry& g, Tensor& x) {
  dispatch_float(x.dtype(), "col2im",
                 [&]<class T>() { lower<T, false>(x.data<T>(), cols.data<T>(), x.size(0), g); });
}

}  // namespace cw::cpu
