// Pillow's bilinear resampling and torchvision's center crop; see image_resize.h. The resampler
// follows Pillow's src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc,
// ImagingResampleHorizontal/Vertical_8bpc, ImagingResampleInner) step by step, because "the same
// filter" is not enough for equal bytes: the coefficients are rounded to 22-bit fixed point, each
// pass rounds and clips to a byte, and the horizontal pass runs first on only the rows the
// vertical pass will read.
#include "data/image_resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace cw::data {
namespace {

// Pillow: PRECISION_BITS = 32 - 8 - 2 (room for 8-bit values times coefficients, plus sign).
constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// One output pixel's taps: input pixels [first, first + count) with fixed-point weights.
struct Taps {
  std::vector<int64_t> first, count;
  std::vector<int32_t> weights;  // out_size x ksize
  int64_t ksize = 0;
};

// precompute_coeffs + normalize_coeffs_8bpc for the box [0, in_size): the bilinear filter's
// support (1) is widened by the reduction factor when shrinking, which is the antialiasing.
Taps precompute(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  Taps t;
  t.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(static_cast<size_t>(out_size));
  t.count.resize(static_cast<size_t>(out_size));
  t.weights.assign(static_cast<size_t>(out_size * t.ksize), 0);
  std::vector<double> k(static_cast<size_t>(t.ksize));
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = (static_cast<double>(xx) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // Pillow truncates after adding 0.5 ("round the value"), on values that may be negative.
    int64_t xmin = static_cast<int64_t>(static_cast<int>(center - support + 0.5));
    int64_t xmax = static_cast<int64_t>(static_cast<int>(center + support + 0.5));
    xmin = std::max<int64_t>(xmin, 0);
    xmax = std::min(xmax, in_size) - xmin;
    double ww = 0.0;
    for (int64_t x = 0; x < xmax; ++x) {
      const double w = bilinear_filter((static_cast<double>(x + xmin) - center + 0.5) * ss);
      k[static_cast<size_t>(x)] = w;
      ww += w;
    }
    for (int64_t x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? k[static_cast<size_t>(x)] / ww : k[static_cast<size_t>(x)];
      // normalize_coeffs_8bpc: round half away from zero by truncating +-0.5.
      t.weights[static_cast<size_t>(xx * t.ksize + x)] =
          static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    t.first[static_cast<size_t>(xx)] = xmin;
    t.count[static_cast<size_t>(xx)] = xmax;
  }
  return t;
}

// Pillow's clip8: the accumulator (which starts at half a unit, so this rounds) back to a byte.
uint8_t clip8(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(std::clamp<int64_t>(v, 0, 255));
}

}  // namespace

std::pair<int64_t, int64_t> resized_size(int64_t height, int64_t width, int64_t size) {
  CW_CHECK(height > 0 && width > 0 && size > 0, ValueError, "resized_size: image ", height, " x ", width,
           " and size ", size, " must be positive");
  const int64_t short_side = std::min(height, width), long_side = std::max(height, width);
  // torchvision: int(requested_new_short * long / short), a true division then truncation.
  const auto new_long =
      static_cast<int64_t>(static_cast<double>(size * long_side) / static_cast<double>(short_side));
  return width <= height ? std::pair{new_long, size} : std::pair{size, new_long};
}

ByteImage pil_resize_bilinear(const ByteImage& in, int64_t out_height, int64_t out_width) {
  CW_CHECK(in.height > 0 && in.width > 0 && in.channels > 0 &&
               static_cast<int64_t>(in.pixels.size()) == in.height * in.width * in.channels,
           ValueError, "pil_resize_bilinear: malformed ", in.height, " x ", in.width, " x ", in.channels,
           " image of ", in.pixels.size(), " bytes");
  CW_CHECK(out_height > 0 && out_width > 0, ValueError, "pil_resize_bilinear: output size ", out_height,
           " x ", out_width, " must be positive");
  if (out_height == in.height && out_width == in.width) return in;
  const int64_t C = in.channels;
  const bool need_horizontal = out_width != in.width, need_vertical = out_height != in.height;
  const Taps th = precompute(in.width, out_width), tv = precompute(in.height, out_height);

  // Horizontal pass over the rows the vertical pass reads: [ybox_first, ybox_last).
  const int64_t ybox_first = tv.first.front();
  const int64_t ybox_last = tv.first.back() + tv.count.back();
  ByteImage mid;
  int64_t mid_offset = 0;  // source row of mid's row 0
  if (need_horizontal) {
    mid.height = ybox_last - ybox_first;
    mid.width = out_width;
    mid.channels = C;
    mid.pixels.resize(static_cast<size_t>(mid.height * mid.width * C));
    for (int64_t y = 0; y < mid.height; ++y) {
      const uint8_t* src = in.pixels.data() + (y + ybox_first) * in.width * C;
      uint8_t* dst = mid.pixels.data() + y * out_width * C;
      for (int64_t xx = 0; xx < out_width; ++xx) {
        const int64_t x0 = th.first[static_cast<size_t>(xx)], n = th.count[static_cast<size_t>(xx)];
        const int32_t* k = th.weights.data() + xx * th.ksize;
        for (int64_t c = 0; c < C; ++c) {
          int64_t acc = int64_t{1} << (kPrecisionBits - 1);
          for (int64_t x = 0; x < n; ++x) acc += int64_t{src[(x0 + x) * C + c]} * k[x];
          dst[xx * C + c] = clip8(acc);
        }
      }
    }
    mid_offset = ybox_first;
  } else {
    mid = in;
  }
  if (!need_vertical) return mid;

  ByteImage out;
  out.height = out_height;
  out.width = mid.width;
  out.channels = C;
  out.pixels.resize(static_cast<size_t>(out.height * out.width * C));
  const int64_t row = mid.width * C;
  for (int64_t yy = 0; yy < out_height; ++yy) {
    const int64_t y0 = tv.first[static_cast<size_t>(yy)] - mid_offset, n = tv.count[static_cast<size_t>(yy)];
    const int32_t* k = tv.weights.data() + yy * tv.ksize;
    uint8_t* dst = out.pixels.data() + yy * row;
    for (int64_t i = 0; i < row; ++i) {
      int64_t acc = int64_t{1} << (kPrecisionBits - 1);
      for (int64_t y = 0; y < n; ++y)
        acc += int64_t{mid.pixels[static_cast<size_t>((y0 + y) * row + i)]} * k[y];
      dst[i] = clip8(acc);
    }
  }
  return out;
}

ByteImage center_crop(const ByteImage& in, int64_t crop) {
  CW_CHECK(crop > 0 && in.height >= crop && in.width >= crop, ValueError, "center_crop: cannot cut ", crop,
           " x ", crop, " from a ", in.height, " x ", in.width, " image");
  // Python's round() of a half-integer: to even, which std::nearbyint does in the default mode.
  const auto top = static_cast<int64_t>(std::nearbyint(static_cast<double>(in.height - crop) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint(static_cast<double>(in.width - crop) / 2.0));
  ByteImage out;
  out.height = out.width = crop;
  out.channels = in.channels;
  out.pixels.resize(static_cast<size_t>(crop * crop * in.channels));
  const int64_t C = in.channels;
  for (int64_t y = 0; y < crop; ++y)
    std::copy_n(in.pixels.data() + ((top + y) * in.width + left) * C, crop * C,
                out.pixels.data() + y * crop * C);
  return out;
}

ByteImage resize_center_crop(const ByteImage& in, int64_t resize, int64_t crop) {
  CW_CHECK(crop > 0 && resize >= crop, ValueError, "resize_center_crop: resize ", resize, " must be >= crop ",
           crop, " > 0");
  const auto [h, w] = resized_size(in.height, in.width, resize);
  return center_crop(pil_resize_bilinear(in, h, w), crop);
}

}  // namespace cw::data
