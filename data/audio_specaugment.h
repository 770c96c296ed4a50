// SpecAugment (Park et al., "SpecAugment: A Simple Data Augmentation Method for Automatic
// Speech Recognition", Interspeech 2019, section 2): frequency and time masks on (T, F) features,
// drawn from a cw::Generator so that a seed reproduces them exactly. Training-time last stage of
// the audio front end, after CMVN (so a mask value of 0 is the mean). Part of data/.
// Time warping is left out, as in most Conformer recipes (the paper found it the least useful).
#pragma once

#include <cstdint>
#include <vector>

#include "core/generator.h"
#include "core/tensor.h"

namespace cw::data {

// Defaults: the paper's LibriSpeech "LD" policy (Table 1: F = 27, mF = 2, T = 100, p = 1.0,
// mT = 2). The Conformer paper (Gulati et al. 2020) keeps F = 27, mF = 2 and uses ten time masks
// of at most 5% of the utterance (adaptive masking): num_time_masks = 10, max_time_ratio = 0.05
// with max_time_width no smaller than the longest 5%.
struct SpecAugmentOptions {
  int64_t num_freq_masks = 2;    // mF
  int64_t max_freq_width = 27;   // F: width f ~ U{0..F}, start f0 ~ U{0..nu - f}
  int64_t num_time_masks = 2;    // mT
  int64_t max_time_width = 100;  // T: width t ~ U{0..min(T, floor(p * tau))}
  double max_time_ratio = 1.0;   // p: upper bound on a time mask as a fraction of the frames
  double mask_value = 0.0;       // written into masked cells
};

// One mask: rows [start, start + width) of the time axis or columns of the frequency axis.
struct SpecAugmentMask {
  enum class Axis { Time, Freq };
  Axis axis = Axis::Time;
  int64_t start = 0;
  int64_t width = 0;  // may be 0 (the paper's width includes 0)
};

// Draws the masks for a (frames, bins) input: frequency masks first, then time masks, one
// Philox block (seed, offset) per mask, reserved from gen, so equal seeds give equal masks and
// successive calls continue the stream. Every mask lies inside the input. Negative counts or
// widths, or max_time_ratio outside [0, 1], throw ValueError.
std::vector<SpecAugmentMask> sample_spec_augment_masks(int64_t frames, int64_t bins,
                                                       const SpecAugmentOptions& options, Generator& gen);

// Returns a copy of f32 (T, F) features (CPU) with the given masks set to mask_value.
Tensor apply_spec_augment_masks(const Tensor& features, const std::vector<SpecAugmentMask>& masks,
                                double mask_value = 0.0);

// sample_spec_augment_masks then apply_spec_augment_masks.
Tensor spec_augment(const Tensor& features, const SpecAugmentOptions& options = {},
                    Generator& gen = default_generator());

}  // namespace cw::data
