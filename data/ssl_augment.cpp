// SimCLR views (see ssl_augment.h).
#include "data/ssl_augment.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/ops.h"
#include "data/seeded_keys.h"

namespace cw::data {

Tensor simclr_view(const Tensor& images, const SslAugment& a, uint64_t seed, uint64_t stream) {
  CW_CHECK(images.dim() == 4 && images.dtype() == DType::F32, ShapeError,
           "simclr_view: images must be f32 (B, C, H, W), got ", describe(images));
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  CW_CHECK(a.mean.size() == a.std.size() && (a.mean.empty() || static_cast<int64_t>(a.mean.size()) == C),
           ValueError, "simclr_view: mean/std need ", C, " entries each, got ", a.mean.size(), "/",
           a.std.size());
  const Tensor x = images.contiguous();
  Tensor y = ops::empty({B, C, H, W}, DType::F32);
  const float* src = x.data<float>();
  float* dst = y.data<float>();
  const int64_t plane = H * W;
  for (int64_t b = 0; b < B; ++b) {
    // (seed, stream, row) decorrelated by chained splitmix64 into this row's generator seed.
    std::mt19937_64 gen(mix64(mix64(mix64(seed) ^ stream) ^ static_cast<uint64_t>(b)));
    std::uniform_real_distribution<double> u(0.0, 1.0);
    // Random resized crop (torchvision's RandomResizedCrop, scale (crop_min_scale, 1), ratio (3/4, 4/3)).
    const double area = a.crop_min_scale + (1.0 - a.crop_min_scale) * u(gen);
    const double log_ratio = std::log(3.0 / 4.0) + (std::log(4.0 / 3.0) - std::log(3.0 / 4.0)) * u(gen);
    const double ratio = std::exp(log_ratio);
    const double cw = std::min<double>(W, std::sqrt(area * ratio) * W);
    const double ch = std::min<double>(H, std::sqrt(area / ratio) * H);
    const double x0 = (W - cw) * u(gen), y0 = (H - ch) * u(gen);
    const bool flip = a.flip && u(gen) < 0.5;
    const double bright = 1.0 + a.brightness * (2.0 * u(gen) - 1.0);
    const double contr = 1.0 + a.contrast * (2.0 * u(gen) - 1.0);
    std::normal_distribution<double> noise(0.0, a.noise_std > 0 ? a.noise_std : 1.0);
    for (int64_t c = 0; c < C; ++c) {
      const float* s = src + (b * C + c) * plane;
      float* d = dst + (b * C + c) * plane;
      for (int64_t i = 0; i < H; ++i) {
        // Output pixel centre (i + 0.5) maps into the crop window; clamp at the image border.
        const double sy = std::clamp(y0 + (static_cast<double>(i) + 0.5) * ch / H - 0.5, 0.0, H - 1.0);
        const auto iy = static_cast<int64_t>(sy);
        const int64_t iy1 = std::min(iy + 1, H - 1);
        const double fy = sy - static_cast<double>(iy);
        for (int64_t j = 0; j < W; ++j) {
          const int64_t jj = flip ? W - 1 - j : j;
          const double sx = std::clamp(x0 + (static_cast<double>(jj) + 0.5) * cw / W - 0.5, 0.0, W - 1.0);
          const auto ix = static_cast<int64_t>(sx);
          const int64_t ix1 = std::min(ix + 1, W - 1);
          const double fx = sx - static_cast<double>(ix);
          d[i * W + j] = static_cast<float>((1 - fy) * ((1 - fx) * s[iy * W + ix] + fx * s[iy * W + ix1]) +
                                            fy * ((1 - fx) * s[iy1 * W + ix] + fx * s[iy1 * W + ix1]));
        }
      }
      double m = 0;
      for (int64_t k = 0; k < plane; ++k) m += d[k];
      m /= static_cast<double>(plane);
      for (int64_t k = 0; k < plane; ++k) {
        double v = ((d[k] * bright) - m * bright) * contr + m * bright;
        if (a.noise_std > 0) v += noise(gen);
        v = std::clamp(v, 0.0, 1.0);
        if (!a.mean.empty()) v = (v - a.mean[static_cast<size_t>(c)]) / a.std[static_cast<size_t>(c)];
        d[k] = static_cast<float>(v);
      }
    }
  }
  return y;
}

}  // namespace cw::data
