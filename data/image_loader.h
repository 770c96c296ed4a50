// Batches of images, captions and labels for the image-text experiment, drawn from an
// ImageDataset: seeded shuffling, augmentation (random crop with zero padding, horizontal flip
// where the data set allows it), per-channel normalization, one caption per image picked from its
// captions, and background threads that prepare batches ahead of the trainer. Last stage of the
// image data path (idx_reader.h -> image_dataset.h -> here). Part of data/.
//
// Determinism: a batch is a pure function of (seed, epoch, batch_in_epoch) and the options: the
// epoch's order comes from a Philox key derived from (seed, epoch); row j of a batch draws its
// crop offset, flip and caption from one Philox block keyed by (seed, epoch, batch) with counter
// j. Worker threads only decide when a batch is computed, never what it holds, so results do not
// depend on num_workers, and seek() resumes exactly.
//
// Per image, in the order torchvision's RandomCrop(padding) -> RandomHorizontalFlip -> ToTensor
// -> Normalize applies them: pad by crop_padding pixels of value 0 on every side, cut an H x W
// window at a uniform offset in [0, 2 * crop_padding]^2 (so the image moves by at most
// crop_padding pixels), mirror left-right with probability 1/2 (only when the data set's
// horizontal_flip() is true: not for digits, nor for the shapes whose captions say left/right),
// resize when asked, scale bytes to [0, 1], then (x - mean[c]) / std[c] when mean/std are given.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/image_dataset.h"
#include "data/prefetcher.h"

namespace cw::data {

struct ImageLoaderOptions {
  int64_t batch_size = 64;
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = true;  // every batch has batch_size rows (a partial last batch is dropped)
  bool augment = false;   // random crop (crop_padding > 0) and, where allowed, horizontal flip
  int64_t crop_padding = 2;
  // Output size: 0, 0 keeps the data set's H x W; otherwise each image is resized to
  // resize_height x resize_width after augmentation, bilinearly with PyTorch's
  // interpolate(mode="bilinear", align_corners=False) sampling (e.g. the 8 x 8 digits to the
  // 28 x 28 of the small ViT preset).
  int64_t resize_height = 0, resize_width = 0;
  // Per-channel normalization; both empty (no normalization) or both of size C, std > 0.
  // Use the training split's ImageDataset::channel_stats() for every split.
  std::vector<float> mean, std;
  // Which caption of a row goes into the batch: a seeded random one ("random", for training) or
  // always the first ("first", for evaluation).
  std::string caption_choice = "random";
  // Background threads preparing batches; 0 = synchronous, next() computes the batch itself.
  int num_workers = 2;
  int prefetch_batches = 4;  // batches prepared ahead of the consumer; at least 1
};

// Options of the deterministic evaluation pass: every row once, in manifest order, the last
// partial batch kept, no augmentation, first caption, synchronous.
ImageLoaderOptions image_eval_options(int64_t batch_size);

struct ImageBatch {
  Tensor images;                       // f32 (B, C, H, W), H x W the resize target when set
  Tensor labels;                       // i64 (B)
  std::vector<int64_t> indices;        // data set rows, in batch order
  std::vector<int64_t> caption_index;  // which of each row's captions was taken
  std::vector<std::string> captions;   // that caption's text
  int64_t epoch = 0, batch_in_epoch = 0;
};

// Counters for the throughput report (batches, consumer wait, production time).
using ImageLoaderStats = PrefetchStats;

class ImageLoader {
 public:
  // Throws ValueError for bad options (naming the option), or when drop_last leaves no batch.
  ImageLoader(std::shared_ptr<const ImageDataset> dataset, ImageLoaderOptions options);
  ImageLoader(const ImageLoader&) = delete;
  ImageLoader& operator=(const ImageLoader&) = delete;

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  // The next batch; endless: after the last batch of epoch e comes batch 0 of epoch e + 1,
  // reshuffled. Rethrows an error raised while preparing that batch. Call from one thread.
  ImageBatch next();
  // The next next() returns batch b of epoch e exactly as an uninterrupted run would. Discards
  // prepared batches. IndexError for b outside [0, batches_per_epoch()).
  void seek(int64_t epoch, int64_t batch_in_epoch);
  int64_t epoch() const { return prefetch_.position() / batches_per_epoch_; }
  int64_t batch_in_epoch() const { return prefetch_.position() % batches_per_epoch_; }

  // The pure functions behind next(): the rows of every batch of an epoch, and one batch
  // (computed on the calling thread, independent of the loader's position).
  std::vector<std::vector<int64_t>> epoch_plan(int64_t epoch) const;
  ImageBatch batch(int64_t epoch, int64_t batch_in_epoch) const;

  ImageLoaderStats stats() const;
  const ImageLoaderOptions& options() const { return options_; }
  const ImageDataset& dataset() const { return *dataset_; }

 private:
  std::shared_ptr<const std::vector<std::vector<int64_t>>> plan_for(int64_t epoch) const;
  ImageBatch make_batch(int64_t epoch, int64_t b, const std::vector<std::vector<int64_t>>& plan) const;

  std::shared_ptr<const ImageDataset> dataset_;
  ImageLoaderOptions options_;
  int64_t batches_per_epoch_ = 0;

  mutable std::mutex plan_mutex_;
  mutable std::map<int64_t, std::shared_ptr<const std::vector<std::vector<int64_t>>>> plans_;

  // Batch k = epoch * batches_per_epoch + batch_in_epoch, prepared ahead by worker threads.
  // Declared last: destroyed first, so its workers stop before what they read goes away.
  OrderedPrefetcher<ImageBatch> prefetch_;
};

// Every batch of image_eval_options(batch_size) over the data set, in order.
std::vector<ImageBatch> image_eval_batches(std::shared_ptr<const ImageDataset> dataset, int64_t batch_size);

}  // namespace cw::data
