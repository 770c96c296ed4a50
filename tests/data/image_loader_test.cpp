// Tests of data/image_loader.h on a hand-made data set: batches are a pure function of
// (seed, epoch, batch) whatever the worker count, seek resumes exactly, every epoch is a
// permutation, augmentation stays within its bounds (crop shift <= padding, zero fill, flip only
// where the data set allows it), normalization and caption choice, and bad options are named.
#include "data/image_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>

#include "core/error.h"
#include "image_test_data.h"

namespace cw {
namespace {

using test::ImageTempDir;
using test::TinyImageSet;
using test::write_tiny_image_set;

std::shared_ptr<const data::ImageDataset> tiny_set(const ImageTempDir& dir, const TinyImageSet& s = {}) {
  write_tiny_image_set(dir.path, s);
  return std::make_shared<const data::ImageDataset>(data::ImageDataset::load(dir.path, "train"));
}

void expect_same(const data::ImageBatch& a, const data::ImageBatch& b) {
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.batch_in_epoch, b.batch_in_epoch);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.captions, b.captions);
  EXPECT_EQ(a.caption_index, b.caption_index);
  EXPECT_EQ(a.labels.to_vector<int64_t>(), b.labels.to_vector<int64_t>());
  EXPECT_EQ(a.images.to_vector<float>(), b.images.to_vector<float>());
}

data::ImageLoaderOptions train_options(int workers) {
  data::ImageLoaderOptions o;
  o.batch_size = 3;
  o.seed = 7;
  o.augment = true;
  o.crop_padding = 2;
  o.num_workers = workers;
  return o;
}

TEST(ImageLoader, BatchesArePureWhateverTheWorkers) {
  ImageTempDir dir("pure");
  auto ds = tiny_set(dir);
  data::ImageLoader sync(ds, train_options(0)), one(ds, train_options(1)), three(ds, train_options(3));
  ASSERT_EQ(sync.batches_per_epoch(), 3);  // 10 rows, batch 3, drop_last
  for (int k = 0; k < 10; ++k) {           // over three epochs
    const data::ImageBatch a = sync.next(), b = one.next(), c = three.next();
    expect_same(a, b);
    expect_same(a, c);
    expect_same(a, sync.batch(a.epoch, a.batch_in_epoch));
    EXPECT_EQ(a.images.shape(), (Shape{3, 3, 4, 5}));
  }
  // Another seed gives another order.
  data::ImageLoaderOptions o = train_options(0);
  o.seed = 8;
  data::ImageLoader other(ds, o);
  bool differs = false;
  for (int e = 0; e < 3; ++e) differs |= other.epoch_plan(e) != sync.epoch_plan(e);
  EXPECT_TRUE(differs);
  EXPECT_EQ(three.stats().batches, 10);
  EXPECT_GT(three.stats().produce_seconds, 0.0);
}

TEST(ImageLoader, EveryEpochIsAPermutationAndEpochsDiffer) {
  ImageTempDir dir("perm");
  auto ds = tiny_set(dir);
  data::ImageLoaderOptions o = train_options(0);
  o.drop_last = false;
  data::ImageLoader loader(ds, o);
  ASSERT_EQ(loader.batches_per_epoch(), 4);  // 3 + 3 + 3 + 1
  std::set<std::vector<int64_t>> orders;
  for (int e = 0; e < 4; ++e) {
    std::vector<int64_t> rows;
    for (const auto& b : loader.epoch_plan(e)) rows.insert(rows.end(), b.begin(), b.end());
    orders.insert(rows);
    std::sort(rows.begin(), rows.end());
    EXPECT_EQ(rows, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  }
  EXPECT_GE(orders.size(), 3u);
  // The evaluation pass: manifest order, last batch partial, first captions, no augmentation.
  const auto eval = data::image_eval_batches(ds, 4);
  ASSERT_EQ(eval.size(), 3u);
  EXPECT_EQ(eval[2].indices, (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(eval[2].captions, (std::vector<std::string>{"image 8 caption 0", "image 9 caption 0"}));
  const auto img = eval[2].images.to_vector<float>();
  EXPECT_FLOAT_EQ(img[0], test::test_pixel(8, 0, 0, 0, 5) / 255.0f);
}

TEST(ImageLoader, SeekResumesExactly) {
  ImageTempDir dir("seek");
  auto ds = tiny_set(dir);
  data::ImageLoader straight(ds, train_options(2));
  std::vector<data::ImageBatch> ref;
  for (int k = 0; k < 8; ++k) ref.push_back(straight.next());
  data::ImageLoader resumed(ds, train_options(2));
  resumed.next();
  resumed.next();
  resumed.seek(1, 1);  // global batch 4
  EXPECT_EQ(resumed.epoch(), 1);
  EXPECT_EQ(resumed.batch_in_epoch(), 1);
  for (int k = 4; k < 8; ++k) expect_same(resumed.next(), ref[static_cast<size_t>(k)]);
  resumed.seek(0, 0);  // backwards too
  expect_same(resumed.next(), ref[0]);
  EXPECT_THROW(resumed.seek(0, 3), IndexError);
  EXPECT_THROW(resumed.seek(-1, 0), IndexError);
}

// The (dx, dy, flip) that maps image `row` onto `out` (C, H, W), or nullopt: out(y, x) must be
// pixel (y + dy, x' + dx) with x' = flip ? W - 1 - x : x, and 0 where that is outside.
struct Shift {
  int64_t dx, dy;
  bool flip;
};
std::optional<Shift> find_shift(const float* out, int64_t row, const TinyImageSet& s, int64_t max_pad) {
  for (int64_t dy = -max_pad; dy <= max_pad; ++dy)
    for (int64_t dx = -max_pad; dx <= max_pad; ++dx)
      for (bool flip : {false, true}) {
        bool ok = true;
        for (int64_t c = 0; c < s.c && ok; ++c)
          for (int64_t y = 0; y < s.h && ok; ++y)
            for (int64_t x = 0; x < s.w && ok; ++x) {
              const int64_t sy = y + dy, sx = (flip ? s.w - 1 - x : x) + dx;
              const bool inside = sy >= 0 && sy < s.h && sx >= 0 && sx < s.w;
              const float want = inside ? test::test_pixel(row, sy, sx, c, s.w) / 255.0f : 0.0f;
              // The loader multiplies by 1/255: equal to v / 255 within an ulp.
              ok = std::abs(out[(c * s.h + y) * s.w + x] - want) < 1e-6f;
            }
        if (ok) return Shift{dx, dy, flip};
      }
  return std::nullopt;
}

TEST(ImageLoader, AugmentationStaysWithinItsBounds) {
  for (const bool flip_allowed : {true, false}) {
    ImageTempDir dir(flip_allowed ? "aug_flip" : "aug_noflip");
    TinyImageSet s;
    s.flip = flip_allowed;
    auto ds = tiny_set(dir, s);
    data::ImageLoaderOptions o = train_options(0);
    o.batch_size = 5;
    data::ImageLoader loader(ds, o);
    std::set<int64_t> dxs, dys;
    int flips = 0, images = 0;
    for (int k = 0; k < 80; ++k) {
      const data::ImageBatch b = loader.next();
      const float* p = b.images.data<float>();
      for (size_t j = 0; j < b.indices.size(); ++j, ++images) {
        // Search a wider window than the padding: a shift beyond it must be found and fail.
        const auto sh = find_shift(p + j * 60, b.indices[j], s, 3);
        ASSERT_TRUE(sh.has_value()) << "image " << j << " of batch " << k << " is no shifted copy";
        EXPECT_LE(std::abs(sh->dx), 2);
        EXPECT_LE(std::abs(sh->dy), 2);
        dxs.insert(sh->dx);
        dys.insert(sh->dy);
        flips += sh->flip;
      }
    }
    // Every shift in [-2, 2] occurs (400 images, 5 values each).
    EXPECT_EQ(dxs, (std::set<int64_t>{-2, -1, 0, 1, 2}));
    EXPECT_EQ(dys, (std::set<int64_t>{-2, -1, 0, 1, 2}));
    if (flip_allowed) {
      EXPECT_GT(flips, images / 4);
      EXPECT_LT(flips, 3 * images / 4);
    } else {
      EXPECT_EQ(flips, 0);  // digits / shapes: never mirrored
    }
  }
  // augment off: exact pixels.
  ImageTempDir dir("noaug");
  auto ds = tiny_set(dir);
  data::ImageLoaderOptions o = train_options(0);
  o.augment = false;
  const data::ImageBatch b = data::ImageLoader(ds, o).batch(0, 0);
  for (size_t j = 0; j < 3; ++j) {
    const auto sh = find_shift(b.images.data<float>() + j * 60, b.indices[j], TinyImageSet{}, 0);
    ASSERT_TRUE(sh.has_value());
    EXPECT_FALSE(sh->flip);
  }
}

TEST(ImageLoader, NormalizesPerChannelAndPicksCaptions) {
  ImageTempDir dir("norm");
  auto ds = tiny_set(dir);
  data::ImageLoaderOptions o = data::image_eval_options(10);
  o.mean = {0.1f, 0.2f, 0.3f};
  o.std = {0.5f, 0.25f, 2.0f};
  const data::ImageBatch b = data::ImageLoader(ds, o).batch(0, 0);
  const auto v = b.images.to_vector<float>();
  for (int64_t i = 0; i < 10; ++i)
    for (int64_t c = 0; c < 3; ++c) {
      const float want = (test::test_pixel(i, 2, 3, c, 5) / 255.0f - o.mean[static_cast<size_t>(c)]) /
                         o.std[static_cast<size_t>(c)];
      EXPECT_NEAR(v[static_cast<size_t>(((i * 3 + c) * 4 + 2) * 5 + 3)], want, 1e-6);
    }
  // Random captions: each row's caption is one of its own, and all three indices occur.
  data::ImageLoader loader(ds, train_options(0));
  std::set<int64_t> seen;
  for (int k = 0; k < 20; ++k) {
    const data::ImageBatch t = loader.next();
    for (size_t j = 0; j < t.indices.size(); ++j) {
      seen.insert(t.caption_index[j]);
      EXPECT_EQ(t.captions[j], ds->row(t.indices[j]).captions[static_cast<size_t>(t.caption_index[j])]);
      EXPECT_EQ(t.labels.to_vector<int64_t>()[j], ds->row(t.indices[j]).label);
    }
  }
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1, 2}));
}

TEST(ImageLoader, ResizesBilinearlyLikePyTorch) {
  ImageTempDir dir("resize");
  TinyImageSet s;
  s.n = 1;
  s.c = 1;
  s.h = 2;
  s.w = 2;
  s.classes = 1;
  auto ds = tiny_set(dir, s);  // one image [[1, 2], [3, 4]] / 255
  data::ImageLoaderOptions o = data::image_eval_options(1);
  o.resize_height = 4;
  o.resize_width = 4;
  const data::ImageBatch b = data::ImageLoader(ds, o).batch(0, 0);
  ASSERT_EQ(b.images.shape(), (Shape{1, 1, 4, 4}));
  // torch.nn.functional.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False) of
  // [[1, 2], [3, 4]] (rows and columns sample at -0.25 -> 0, 0.25, 0.75, 1.25 -> 1).
  const float want[] = {1,    1.25f, 1.75f, 2,    1.5f, 1.75f, 2.25f, 2.5f,
                        2.5f, 2.75f, 3.25f, 3.5f, 3,    3.25f, 3.75f, 4};
  const auto v = b.images.to_vector<float>();
  for (int k = 0; k < 16; ++k) EXPECT_NEAR(v[static_cast<size_t>(k)] * 255.0f, want[k], 1e-4) << k;
  // Downsizing 4 x 5 -> 2 x 2 samples at 0.5 (rows) and 0.75, 2.75 (columns); with normalization.
  ImageTempDir dir2("resize_down");
  auto ds2 = tiny_set(dir2);
  o.resize_height = 2;
  o.resize_width = 2;
  o.mean = {0.5f, 0.5f, 0.5f};
  o.std = {2.0f, 2.0f, 2.0f};
  const auto d = data::ImageLoader(ds2, o).batch(0, 0).images.to_vector<float>();
  auto px = [](int64_t y, int64_t x) { return static_cast<float>(test::test_pixel(0, y, x, 0, 5)); };
  const float top_left =
      0.5f * (0.25f * px(0, 0) + 0.75f * px(0, 1)) + 0.5f * (0.25f * px(1, 0) + 0.75f * px(1, 1));
  EXPECT_NEAR(d[0], (top_left / 255.0f - 0.5f) / 2.0f, 1e-6);
  EXPECT_THROW(data::ImageLoader(ds2,
                                 [] {
                                   data::ImageLoaderOptions bad = data::image_eval_options(1);
                                   bad.resize_height = 3;
                                   return bad;
                                 }()),
               ValueError);
}

TEST(ImageLoader, BadOptionsAreNamed) {
  ImageTempDir dir("bad");
  auto ds = tiny_set(dir);
  auto error = [&](auto edit) {
    data::ImageLoaderOptions o = train_options(0);
    edit(o);
    try {
      data::ImageLoader loader(ds, o);
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error([](auto& o) { o.batch_size = 0; }).find("batch_size"), std::string::npos);
  EXPECT_NE(error([](auto& o) { o.batch_size = 11; }).find("gives no batch"), std::string::npos);
  EXPECT_NE(error([](auto& o) { o.crop_padding = -1; }).find("crop_padding"), std::string::npos);
  EXPECT_NE(error([](auto& o) {
              o.mean = {0.5f};
              o.std = {0.5f};
            }).find("3 values"),
            std::string::npos);
  EXPECT_NE(error([](auto& o) {
              o.mean = {0, 0, 0};
              o.std = {1, 0, 1};
            }).find("std values must be > 0"),
            std::string::npos);
  EXPECT_NE(error([](auto& o) { o.caption_choice = "all"; }).find("caption_choice"), std::string::npos);
  EXPECT_NE(error([](auto& o) { o.prefetch_batches = 0; }).find("prefetch_batches"), std::string::npos);
}

}  // namespace
}  // namespace cw
