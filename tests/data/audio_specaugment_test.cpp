// Tests of data/audio_specaugment.h: masks are reproducible from the seed, lie inside the input,
// respect the width caps (including the adaptive time ratio), cover their whole range of widths,
// and change exactly the masked cells.
#include "data/audio_specaugment.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "core/ops.h"
#include "support/check.h"

namespace cw {
namespace {

using Axis = data::SpecAugmentMask::Axis;

bool same_masks(const std::vector<data::SpecAugmentMask>& a, const std::vector<data::SpecAugmentMask>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].axis != b[i].axis || a[i].start != b[i].start || a[i].width != b[i].width) return false;
  return true;
}

TEST(AudioSpecAugment, DeterministicGivenTheSeed) {
  const Tensor x = ops::add(ops::rand({300, 80}), 1.0);  // no zeros, so masked cells show
  Generator g1(42), g2(42), g3(43);
  const Tensor a = data::spec_augment(x, {}, g1), b = data::spec_augment(x, {}, g2),
               c = data::spec_augment(x, {}, g3);
  EXPECT_TRUE(test::all_close(a, b, 0.0, 0.0));
  EXPECT_FALSE(test::all_close(a, c, 0.0, 0.0));
  // The stream goes on: a second call with the same generator draws new masks.
  Generator g4(42);
  const auto first = data::sample_spec_augment_masks(300, 80, {}, g4);
  const auto second = data::sample_spec_augment_masks(300, 80, {}, g4);
  EXPECT_FALSE(same_masks(first, second));
  // ...and the position in the stream depends on the options only, not on the input's size.
  Generator g5(42), g6(42);
  data::sample_spec_augment_masks(0, 80, {}, g5);
  data::sample_spec_augment_masks(300, 80, {}, g6);
  EXPECT_EQ(g5.offset(), g6.offset());
}

TEST(AudioSpecAugment, MasksShapesAndCells) {
  const int64_t frames = 120, bins = 80;
  const Tensor x = ops::add(ops::rand({frames, bins}), 1.0), before = x.clone();
  data::SpecAugmentOptions o;
  o.num_freq_masks = 2;
  o.max_freq_width = 27;
  o.num_time_masks = 3;
  o.max_time_width = 40;
  o.mask_value = -5.0;
  Generator gen(7);
  const auto masks = data::sample_spec_augment_masks(frames, bins, o, gen);
  ASSERT_EQ(masks.size(), 5u);
  for (size_t i = 0; i < masks.size(); ++i) {
    const auto& m = masks[i];
    EXPECT_EQ(m.axis, i < 2 ? Axis::Freq : Axis::Time);  // frequency masks first
    const int64_t size = m.axis == Axis::Freq ? bins : frames, cap = m.axis == Axis::Freq ? 27 : 40;
    EXPECT_GE(m.start, 0);
    EXPECT_GE(m.width, 0);
    EXPECT_LE(m.width, cap);
    EXPECT_LE(m.start + m.width, size);
  }
  const Tensor y = data::apply_spec_augment_masks(x, masks, o.mask_value);
  EXPECT_EQ(y.shape(), x.shape());
  const std::vector<float> xv = x.to_vector<float>(), yv = y.to_vector<float>();
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t f = 0; f < bins; ++f) {
      bool masked = false;
      for (const auto& m : masks) {
        const int64_t i = m.axis == Axis::Freq ? f : t;
        masked = masked || (i >= m.start && i < m.start + m.width);
      }
      const size_t k = static_cast<size_t>(t * bins + f);
      ASSERT_EQ(yv[k], masked ? -5.0f : xv[k]) << "t " << t << " f " << f;
    }
  // The input is left untouched.
  EXPECT_TRUE(test::all_close(x, before, 0.0, 0.0));
}

TEST(AudioSpecAugment, WidthsCoverTheirRange) {
  // Over many draws the width takes every value 0..F (uniform, F + 1 values) and never more.
  data::SpecAugmentOptions o;
  o.num_freq_masks = 1;
  o.max_freq_width = 10;
  o.num_time_masks = 0;
  Generator gen(1);
  std::set<int64_t> widths, starts;
  for (int i = 0; i < 2000; ++i) {
    const auto m = data::sample_spec_augment_masks(50, 80, o, gen).at(0);
    widths.insert(m.width);
    if (m.width == 10) starts.insert(m.start);
  }
  EXPECT_EQ(widths.size(), 11u);
  EXPECT_EQ(*widths.rbegin(), 10);
  EXPECT_EQ(*starts.rbegin(), 70);  // a full-width mask can touch the last bin
}

TEST(AudioSpecAugment, TimeMasksRespectTheRatioAndShortInputs) {
  data::SpecAugmentOptions o;
  o.num_freq_masks = 0;
  o.num_time_masks = 10;
  o.max_time_width = 1000;
  o.max_time_ratio = 0.05;  // Conformer's adaptive masks: at most 5% of the frames each
  Generator gen(3);
  for (const auto& m : data::sample_spec_augment_masks(400, 80, o, gen)) EXPECT_LE(m.width, 20);
  // Inputs shorter than the caps, and empty ones, still give masks inside them.
  data::SpecAugmentOptions ld;  // F = 27 > 10 bins, T = 100 > 5 frames
  for (const auto& m : data::sample_spec_augment_masks(5, 10, ld, gen))
    EXPECT_LE(m.start + m.width, m.axis == Axis::Freq ? 10 : 5);
  for (const auto& m : data::sample_spec_augment_masks(0, 80, ld, gen))
    if (m.axis == Axis::Time) {
      EXPECT_EQ(m.width, 0);
    }
  EXPECT_EQ(data::spec_augment(ops::zeros({0, 80}), ld, gen).shape(), (Shape{0, 80}));
}

TEST(AudioSpecAugment, NoMasksIsIdentityAndBadOptionsThrow) {
  const Tensor x = ops::rand({20, 8});
  data::SpecAugmentOptions none;
  none.num_freq_masks = 0;
  none.num_time_masks = 0;
  EXPECT_TRUE(test::all_close(data::spec_augment(x, none), x, 0.0, 0.0));
  data::SpecAugmentOptions bad;
  bad.max_time_ratio = 1.5;
  EXPECT_THROW(data::spec_augment(x, bad), ValueError);
  bad = {};
  bad.num_freq_masks = -1;
  EXPECT_THROW(data::spec_augment(x, bad), ValueError);
  EXPECT_THROW(data::spec_augment(ops::zeros({2, 3, 4})), ShapeError);
  EXPECT_THROW(data::apply_spec_augment_masks(x, {{Axis::Time, 15, 10}}), IndexError);
}

}  // namespace
}  // namespace cw
