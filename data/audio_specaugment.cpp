// SpecAugment frequency and time masking (Park et al. 2019, section 2), with draws from the
// framework's Philox generator; see audio_specaugment.h.
#include "data/audio_specaugment.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cw::data {
namespace {

// Uniform integer in [0, n] from two random words (n + 1 values; the float has 53 bits, so the
// bias for the small n here is below 1e-12).
int64_t uniform_int(uint32_t a, uint32_t b, int64_t n) {
  if (n <= 0) return 0;
  const auto v = static_cast<int64_t>(uniform_double(a, b) * static_cast<double>(n + 1));
  return std::min(v, n);
}

}  // namespace

std::vector<SpecAugmentMask> sample_spec_augment_masks(int64_t frames, int64_t bins,
                                                       const SpecAugmentOptions& o, Generator& gen) {
  CW_CHECK(frames >= 0 && bins >= 0, ValueError, "spec_augment: negative size (", frames, ", ", bins, ")");
  CW_CHECK(o.num_freq_masks >= 0 && o.num_time_masks >= 0 && o.max_freq_width >= 0 && o.max_time_width >= 0,
           ValueError, "spec_augment: mask counts and widths must be >= 0, got num_freq_masks ",
           o.num_freq_masks, ", max_freq_width ", o.max_freq_width, ", num_time_masks ", o.num_time_masks,
           ", max_time_width ", o.max_time_width);
  CW_CHECK(o.max_time_ratio >= 0.0 && o.max_time_ratio <= 1.0, ValueError,
           "spec_augment: max_time_ratio must be in [0, 1], got ", o.max_time_ratio);

  const int64_t count = o.num_freq_masks + o.num_time_masks;
  std::vector<SpecAugmentMask> masks;
  masks.reserve(static_cast<size_t>(count));
  // Reserve the counters even for an empty input, so that the stream position depends on the
  // options only and a batch's later utterances get the same masks whatever came before.
  const uint64_t offset = gen.reserve(static_cast<uint64_t>(count));
  const int64_t freq_cap = std::min(o.max_freq_width, bins);
  const int64_t time_cap =
      std::min({o.max_time_width, frames,
                static_cast<int64_t>(std::floor(o.max_time_ratio * static_cast<double>(frames)))});
  for (int64_t i = 0; i < count; ++i) {
    const auto r = philox4x32(offset + static_cast<uint64_t>(i), 0, gen.seed());
    const bool freq = i < o.num_freq_masks;
    const int64_t size = freq ? bins : frames, cap = freq ? freq_cap : time_cap;
    SpecAugmentMask m;
    m.axis = freq ? SpecAugmentMask::Axis::Freq : SpecAugmentMask::Axis::Time;
    m.width = uniform_int(r[0], r[1], cap);             // f ~ U{0..F}
    m.start = uniform_int(r[2], r[3], size - m.width);  // f0 ~ U{0..nu - f}: the mask fits
    masks.push_back(m);
  }
  return masks;
}

Tensor apply_spec_augment_masks(const Tensor& features, const std::vector<SpecAugmentMask>& masks,
                                double mask_value) {
  CW_CHECK(features.defined() && features.dim() == 2 && features.dtype() == DType::F32 &&
               features.device() == Device::cpu(),
           ShapeError, "spec_augment: expected f32 (T, F) features on cpu, got ",
           features.defined() ? describe(features) : std::string("undefined"));
  Tensor y = features.clone();
  const int64_t frames = y.size(0), bins = y.size(1);
  float* p = y.data<float>();
  const auto value = static_cast<float>(mask_value);
  for (const SpecAugmentMask& m : masks) {
    const bool freq = m.axis == SpecAugmentMask::Axis::Freq;
    const int64_t size = freq ? bins : frames;
    CW_CHECK(m.start >= 0 && m.width >= 0 && m.start + m.width <= size, IndexError,
             "spec_augment: ", freq ? "frequency" : "time", " mask [", m.start, ", ", m.start + m.width,
             ") outside 0..", size);
    if (freq) {
      for (int64_t t = 0; t < frames; ++t) std::fill_n(p + t * bins + m.start, m.width, value);
    } else {
      std::fill_n(p + m.start * bins, m.width * bins, value);
    }
  }
  return y;
}

Tensor spec_augment(const Tensor& features, const SpecAugmentOptions& options, Generator& gen) {
  CW_CHECK(features.defined() && features.dim() == 2, ShapeError,
           "spec_augment: expected (T, F) features, got ",
           features.defined() ? describe(features) : std::string("undefined"));
  return apply_spec_augment_masks(features,
                                  sample_spec_augment_masks(features.size(0), features.size(1), options, gen),
                                  options.mask_value);
}

}  // namespace cw::data
