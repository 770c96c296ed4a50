// SimCLR's view generator (Chen et al. 2020, "A Simple Framework for Contrastive Learning of
// Visual Representations", Sec. 3 / Appendix A) for small grey images: random resized crop,
// horizontal flip where the data set allows it, brightness and contrast jitter, Gaussian noise,
// then per-channel normalization. Colour jitter's hue/saturation and blur are left out (one
// channel, 28 pixels). Each row's draws come from a generator seeded by (seed, stream, row), so a
// view is a pure function of its inputs and a resumed run draws the same views. Part of data/,
// beside SpecAugment: a host-side transform of a batch, on one thread (256 images of 28 x 28 took
// 21 ms on the loaded 2-core VM; configs/mini_image_ssl.ini's step of 128 x 2 views takes ~3 s).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace cw::data {

struct SslAugment {
  double crop_min_scale = 0.4;   // area fraction of the crop in [crop_min_scale, 1], aspect in [3/4, 4/3]
  bool flip = true;              // mirror left-right with probability 1/2
  double brightness = 0.4;       // x * b, b ~ U[1 - brightness, 1 + brightness]
  double contrast = 0.4;         // (x - mean(x)) * c + mean(x), c ~ U[1 - contrast, 1 + contrast]
  double noise_std = 0.05;       // + N(0, noise_std^2) per pixel; the result is clamped to [0, 1]
  std::vector<float> mean, std;  // normalization after augmentation (both empty: none)
};

// images: f32 (B, C, H, W) in [0, 1] -> one augmented view of each, f32 (B, C, H, W). The crop is
// resampled bilinearly to H x W (pixel centres, as interpolate(align_corners=False)).
Tensor simclr_view(const Tensor& images, const SslAugment& a, uint64_t seed, uint64_t stream);

}  // namespace cw::data
