// The image batch loader: epoch plans, augmentation and batch assembly, and the prefetching worker
// threads; see image_loader.h. The threading follows speech_loader.cpp (same key derivation, same
// produce/consume protocol), so both loaders resume and prefetch the same way.
#include "data/image_loader.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/generator.h"
#include "data/seeded_keys.h"

namespace cw::data {
namespace {

enum : uint64_t { kRowShuffle = 1, kAugment = 3 };

// Uniform integer in [0, n) from one 32-bit word (n is tiny here: crop offsets, caption counts;
// the modulo bias is below n / 2^32).
int64_t below(uint32_t word, int64_t n) { return static_cast<int64_t>(word % static_cast<uint32_t>(n)); }

// One axis of bilinear resampling, PyTorch's align_corners=False rule: destination pixel d samples
// source position (d + 0.5) * in / out - 0.5, clamped at 0, between pixels i0 and i1.
struct Tap {
  int64_t i0, i1;
  float w1;  // weight of i1; i0 gets 1 - w1
};
std::vector<Tap> bilinear_taps(int64_t in, int64_t out) {
  std::vector<Tap> taps;
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t d = 0; d < out; ++d) {
    const double src = std::max(0.0, (static_cast<double>(d) + 0.5) * scale - 0.5);
    const auto i0 = std::min(static_cast<int64_t>(src), in - 1);
    taps.push_back({i0, std::min(i0 + 1, in - 1), static_cast<float>(src - static_cast<double>(i0))});
  }
  return taps;
}

}  // namespace

ImageLoaderOptions image_eval_options(int64_t batch_size) {
  ImageLoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = false;
  o.drop_last = false;
  o.augment = false;
  o.caption_choice = "first";
  o.num_workers = 0;
  return o;
}

ImageLoader::ImageLoader(std::shared_ptr<const ImageDataset> dataset, ImageLoaderOptions options)
    : dataset_(std::move(dataset)),
      options_(std::move(options)),
      prefetch_(
          [this](int64_t k) {
            const int64_t epoch = k / batches_per_epoch_;
            return make_batch(epoch, k % batches_per_epoch_, *plan_for(epoch));
          },
          options_.num_workers, options_.prefetch_batches) {
  CW_CHECK(dataset_ != nullptr, ValueError, "ImageLoader: no data set");
  const ImageLoaderOptions& o = options_;
  CW_CHECK(o.batch_size >= 1, ValueError, "ImageLoader: batch_size must be >= 1, got ", o.batch_size);
  CW_CHECK(o.crop_padding >= 0, ValueError, "ImageLoader: crop_padding must be >= 0, got ", o.crop_padding);
  CW_CHECK(o.num_workers >= 0, ValueError, "ImageLoader: num_workers must be >= 0, got ", o.num_workers);
  CW_CHECK(o.prefetch_batches >= 1, ValueError, "ImageLoader: prefetch_batches must be >= 1, got ",
           o.prefetch_batches);
  CW_CHECK(o.caption_choice == "random" || o.caption_choice == "first", ValueError,
           "ImageLoader: caption_choice must be \"random\" or \"first\", got \"", o.caption_choice, "\"");
  const auto c = static_cast<size_t>(dataset_->channels());
  CW_CHECK((o.resize_height == 0) == (o.resize_width == 0) && o.resize_height >= 0 && o.resize_width >= 0,
           ValueError,
           "ImageLoader: resize_height and resize_width must both be 0 (no resize) or both > 0, got ",
           o.resize_height, " x ", o.resize_width);
  CW_CHECK(o.mean.size() == o.std.size() && (o.mean.empty() || o.mean.size() == c), ValueError,
           "ImageLoader: mean (", o.mean.size(), " values) and std (", o.std.size(),
           ") must both be empty or have ", c, " values (the channels of ", dataset_->name(), ")");
  for (float s : o.std) CW_CHECK(s > 0.0f, ValueError, "ImageLoader: std values must be > 0, got ", s);
  const int64_t n = dataset_->size();
  batches_per_epoch_ = o.drop_last ? n / o.batch_size : (n + o.batch_size - 1) / o.batch_size;
  CW_CHECK(batches_per_epoch_ > 0, ValueError, "ImageLoader: batch_size ", o.batch_size,
           " with drop_last and ", n, " images of ", dataset_->name(), "/", dataset_->split(),
           " gives no batch");
}

std::vector<std::vector<int64_t>> ImageLoader::epoch_plan(int64_t epoch) const {
  const int64_t n = dataset_->size(), b = options_.batch_size;
  std::vector<int64_t> rows(static_cast<size_t>(n));
  std::iota(rows.begin(), rows.end(), 0);
  if (options_.shuffle) seeded_shuffle(rows, derive_key(options_.seed, kRowShuffle, epoch));
  if (options_.drop_last) rows.resize(static_cast<size_t>(n / b * b));
  std::vector<std::vector<int64_t>> batches;
  for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(b))
    batches.emplace_back(
        rows.begin() + static_cast<std::ptrdiff_t>(start),
        rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), start + static_cast<size_t>(b))));
  return batches;
}

std::shared_ptr<const std::vector<std::vector<int64_t>>> ImageLoader::plan_for(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(plan_mutex_);
  auto it = plans_.find(epoch);
  if (it != plans_.end()) return it->second;
  auto plan = std::make_shared<const std::vector<std::vector<int64_t>>>(epoch_plan(epoch));
  if (plans_.size() >= 3) plans_.erase(plans_.begin());  // workers straddle at most two epochs
  plans_.emplace(epoch, plan);
  return plan;
}

ImageBatch ImageLoader::batch(int64_t epoch, int64_t batch_in_epoch) const {
  CW_CHECK(epoch >= 0 && batch_in_epoch >= 0 && batch_in_epoch < batches_per_epoch_, IndexError,
           "ImageLoader: batch (epoch ", epoch, ", batch ", batch_in_epoch, ") out of range: epochs >= 0, ",
           batches_per_epoch_, " batches per epoch");
  return make_batch(epoch, batch_in_epoch, *plan_for(epoch));
}

ImageBatch ImageLoader::make_batch(int64_t epoch, int64_t b,
                                   const std::vector<std::vector<int64_t>>& plan) const {
  const ImageLoaderOptions& o = options_;
  const ImageDataset& ds = *dataset_;
  const int64_t C = ds.channels(), H = ds.height(), W = ds.width();
  const int64_t pad = o.augment ? o.crop_padding : 0;
  const bool flip_allowed = o.augment && ds.horizontal_flip();
  ImageBatch out;
  out.epoch = epoch;
  out.batch_in_epoch = b;
  out.indices = plan[static_cast<size_t>(b)];
  const auto B = static_cast<int64_t>(out.indices.size());
  const bool resize = o.resize_height > 0;
  const int64_t OH = resize ? o.resize_height : H, OW = resize ? o.resize_width : W;
  const std::vector<Tap> ty = bilinear_taps(H, OH), tx = bilinear_taps(W, OW);
  std::vector<float> plane(static_cast<size_t>(C * H * W));  // one augmented image, (C, H, W), bytes
  out.images = Tensor::empty({B, C, OH, OW}, DType::F32);    // (B, C, OH, OW)
  out.labels = Tensor::empty({B}, DType::I64);
  float* dst = out.images.data<float>();
  int64_t* lab = out.labels.data<int64_t>();
  // Per-channel affine map of a byte: (v / 255 - mean) / std = v * scale + shift.
  std::vector<float> scale(static_cast<size_t>(C), 1.0f / 255.0f), shift(static_cast<size_t>(C), 0.0f);
  for (size_t c = 0; c < o.mean.size(); ++c) {
    scale[c] = 1.0f / (255.0f * o.std[c]);
    shift[c] = -o.mean[c] / o.std[c];
  }
  const uint64_t key = derive_key(o.seed, kAugment, epoch, b);
  for (int64_t j = 0; j < B; ++j) {
    const int64_t row = out.indices[static_cast<size_t>(j)];
    const ImageRow& r = ds.row(row);
    lab[j] = r.label;
    // One Philox block per row: crop x, crop y, flip, caption.
    const auto rnd = philox4x32(static_cast<uint64_t>(j), 0, key);
    const int64_t dx = pad > 0 ? below(rnd[0], 2 * pad + 1) - pad : 0;  // shift in [-pad, pad]
    const int64_t dy = pad > 0 ? below(rnd[1], 2 * pad + 1) - pad : 0;
    const bool flip = flip_allowed && (rnd[2] & 1u) != 0;
    const int64_t cap =
        o.caption_choice == "random" ? below(rnd[3], static_cast<int64_t>(r.captions.size())) : int64_t{0};
    out.caption_index.push_back(cap);
    out.captions.push_back(r.captions[static_cast<size_t>(cap)]);

    const uint8_t* src = ds.pixels(row);  // (H, W, C)
    for (int64_t y = 0; y < H; ++y) {
      const int64_t sy = y + dy;  // source row of the padded-then-cropped image
      for (int64_t x = 0; x < W; ++x) {
        const int64_t ox = flip ? W - 1 - x : x;  // flip after the crop, as torchvision orders it
        const int64_t sx = ox + dx;
        const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
        for (int64_t c = 0; c < C; ++c)  // zero padding outside
          plane[static_cast<size_t>((c * H + y) * W + x)] =
              inside ? static_cast<float>(src[(sy * W + sx) * C + c]) : 0.0f;
      }
    }
    // Resize (bilinear weights sum to 1, so normalizing after it equals normalizing before).
    float* img = dst + j * C * OH * OW;  // (C, OH, OW)
    for (int64_t c = 0; c < C; ++c) {
      const float* p = plane.data() + c * H * W;
      const float a = scale[static_cast<size_t>(c)], b = shift[static_cast<size_t>(c)];
      for (int64_t y = 0; y < OH; ++y)
        for (int64_t x = 0; x < OW; ++x) {
          float v;
          if (!resize) {
            v = p[y * W + x];
          } else {
            const Tap& u = ty[static_cast<size_t>(y)];
            const Tap& t = tx[static_cast<size_t>(x)];
            const float top = p[u.i0 * W + t.i0] * (1 - t.w1) + p[u.i0 * W + t.i1] * t.w1;
            const float bottom = p[u.i1 * W + t.i0] * (1 - t.w1) + p[u.i1 * W + t.i1] * t.w1;
            v = top * (1 - u.w1) + bottom * u.w1;
          }
          img[(c * OH + y) * OW + x] = v * a + b;
        }
    }
  }
  return out;
}

ImageBatch ImageLoader::next() { return prefetch_.next(); }

void ImageLoader::seek(int64_t epoch, int64_t batch_in_epoch) {
  CW_CHECK(epoch >= 0 && batch_in_epoch >= 0 && batch_in_epoch < batches_per_epoch_, IndexError,
           "ImageLoader: seek(", epoch, ", ", batch_in_epoch, ") out of range: epochs >= 0, ",
           batches_per_epoch_, " batches per epoch");
  prefetch_.seek(epoch * batches_per_epoch_ + batch_in_epoch);
}

ImageLoaderStats ImageLoader::stats() const { return prefetch_.stats(); }

std::vector<ImageBatch> image_eval_batches(std::shared_ptr<const ImageDataset> dataset, int64_t batch_size) {
  ImageLoader loader(std::move(dataset), image_eval_options(batch_size));
  std::vector<ImageBatch> batches;
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) batches.push_back(loader.batch(0, b));
  return batches;
}

}  // namespace cw::data
