// The speech batch loader: epoch plans, batch assembly and the prefetching worker threads; see
// speech_loader.h.
#include "data/speech_loader.h"

#include <algorithm>
#include <numeric>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "data/audio_normalize.h"
#include "data/feature_batch.h"
#include "data/seeded_keys.h"

namespace cw::data {
namespace {

// Separate domains so that the shuffle of epoch e and the masks of a batch never share a key.
enum : uint64_t { kRowShuffle = 1, kBatchShuffle = 2, kAugment = 3 };

// Runs the core ops of one batch on the calling thread only, restoring the thread's OpenMP
// setting after. The loader's parallelism is one batch per worker; a batch's copies are small, and
// an OpenMP team per copy competes with the trainer's own team for the same cores (on 2 busy cores
// a batch took 5-10x longer than the same work on one thread).
struct SingleThreadedOps {
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  SingleThreadedOps() { omp_set_num_threads(1); }
  ~SingleThreadedOps() { omp_set_num_threads(saved); }
#endif
};

}  // namespace

SpeechLoaderOptions eval_options(int64_t batch_size) {
  SpeechLoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = false;
  o.drop_last = false;
  o.bucket_by_length = false;
  o.spec_augment = false;
  o.num_workers = 0;
  return o;
}

SpeechLoader::SpeechLoader(std::shared_ptr<const FeatureCache> cache, SpeechLoaderOptions options)
    : cache_(std::move(cache)),
      options_(std::move(options)),
      prefetch_(
          [this](int64_t k) {
            const int64_t epoch = k / batches_per_epoch_;
            return make_batch(epoch, k % batches_per_epoch_, *plan_for(epoch));
          },
          options_.num_workers, options_.prefetch_batches) {
  CW_CHECK(cache_ != nullptr, ValueError, "SpeechLoader: no feature cache");
  const SpeechLoaderOptions& o = options_;
  CW_CHECK(o.batch_size >= 1, ValueError, "SpeechLoader: batch_size must be >= 1, got ", o.batch_size);
  CW_CHECK(o.bucket_window >= 1, ValueError, "SpeechLoader: bucket_window must be >= 1, got ",
           o.bucket_window);
  CW_CHECK(o.max_frames >= 0, ValueError, "SpeechLoader: max_frames must be >= 0 (0: no crop), got ",
           o.max_frames);
  CW_CHECK(o.num_workers >= 0, ValueError, "SpeechLoader: num_workers must be >= 0, got ", o.num_workers);
  CW_CHECK(o.slice_offset >= 0 && o.slice_count >= 0 && (o.slice_count == 0 || o.slice_offset < o.batch_size),
           ValueError, "SpeechLoader: the slice [", o.slice_offset, ", +", o.slice_count,
           ") must lie in a batch of ", o.batch_size, " rows (slice_count 0: every row)");
  CW_CHECK(o.prefetch_batches >= 1, ValueError, "SpeechLoader: prefetch_batches must be >= 1, got ",
           o.prefetch_batches);
  CW_CHECK(o.normalization == "utterance" || o.normalization == "none", ValueError,
           "SpeechLoader: normalization must be \"utterance\" or \"none\", got \"", o.normalization, "\"");
  const int64_t n = cache_->size();
  batches_per_epoch_ = o.drop_last ? n / o.batch_size : (n + o.batch_size - 1) / o.batch_size;
  CW_CHECK(batches_per_epoch_ > 0, ValueError, "SpeechLoader: batch_size ", o.batch_size,
           " with drop_last and ", n, " utterances of ", cache_->manifest().path().string(),
           " gives no batch");
}

std::vector<std::vector<int64_t>> SpeechLoader::epoch_plan(int64_t epoch) const {
  const SpeechLoaderOptions& o = options_;
  const int64_t n = cache_->size(), b = o.batch_size;
  std::vector<int64_t> rows(static_cast<size_t>(n));
  std::iota(rows.begin(), rows.end(), 0);
  if (o.shuffle) seeded_shuffle(rows, derive_key(o.seed, kRowShuffle, epoch));
  if (o.drop_last) rows.resize(static_cast<size_t>(n / b * b));
  if (o.bucket_by_length) {
    const auto window = static_cast<size_t>(o.bucket_window * b);
    for (size_t start = 0; start < rows.size(); start += window) {
      const auto end = rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), start + window));
      std::stable_sort(rows.begin() + static_cast<std::ptrdiff_t>(start), end,
                       [&](int64_t x, int64_t y) { return cache_->num_frames(x) < cache_->num_frames(y); });
    }
  }
  std::vector<std::vector<int64_t>> batches;
  for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(b))
    batches.emplace_back(
        rows.begin() + static_cast<std::ptrdiff_t>(start),
        rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), start + static_cast<size_t>(b))));
  // Sorted windows would otherwise hand out batches in rising length within each window.
  if (o.shuffle && o.bucket_by_length) seeded_shuffle(batches, derive_key(o.seed, kBatchShuffle, epoch));
  return batches;
}

std::shared_ptr<const std::vector<std::vector<int64_t>>> SpeechLoader::plan_for(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(plan_mutex_);
  auto it = plans_.find(epoch);
  if (it != plans_.end()) return it->second;
  auto plan = std::make_shared<const std::vector<std::vector<int64_t>>>(epoch_plan(epoch));
  // Workers straddle at most two epochs; keep a few, dropping the oldest.
  if (plans_.size() >= 3) plans_.erase(plans_.begin());
  plans_.emplace(epoch, plan);
  return plan;
}

SpeechBatch SpeechLoader::batch(int64_t epoch, int64_t batch_in_epoch) const {
  CW_CHECK(epoch >= 0 && batch_in_epoch >= 0 && batch_in_epoch < batches_per_epoch_, IndexError,
           "SpeechLoader: batch (epoch ", epoch, ", batch ", batch_in_epoch, ") out of range: epochs >= 0, ",
           batches_per_epoch_, " batches per epoch");
  return make_batch(epoch, batch_in_epoch, *plan_for(epoch));
}

SpeechBatch SpeechLoader::make_batch(int64_t epoch, int64_t b,
                                     const std::vector<std::vector<int64_t>>& plan) const {
  const SpeechLoaderOptions& o = options_;
  const SingleThreadedOps single_threaded;
  SpeechBatch out;
  out.epoch = epoch;
  out.batch_in_epoch = b;
  out.indices = plan[static_cast<size_t>(b)];
  // The batch's own generator: its masks depend on (seed, epoch, b) only, and each utterance's
  // draws follow the previous one's in batch order.
  Generator gen(derive_key(o.seed, kAugment, epoch, b));
  const int64_t rows = static_cast<int64_t>(out.indices.size());
  const int64_t begin = std::min(o.slice_offset, rows);
  const int64_t end = o.slice_count > 0 ? std::min(rows, begin + o.slice_count) : rows;
  out.slice_offset = begin;
  std::vector<Tensor> feats;
  int64_t t_max = 0;  // the whole batch's, from the index: padding does not depend on the slice
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t row = out.indices[static_cast<size_t>(r)];
    out.transcripts.push_back(cache_->manifest()[row].transcript);
    const int64_t frames =
        o.max_frames > 0 ? std::min(cache_->num_frames(row), o.max_frames) : cache_->num_frames(row);
    t_max = std::max(t_max, frames);
    if (r < begin || r >= end) {
      // Another rank's row: not read, but its masks are drawn, so this slice's continue the stream
      // exactly as in the whole batch.
      if (o.spec_augment) sample_spec_augment_masks(frames, cache_->num_bins(), o.spec_augment_options, gen);
      continue;
    }
    Tensor f = cache_->features(row, o.max_frames);  // (T_i, F), read from its shard
    if (o.normalization == "utterance") f = utterance_cmvn(f);
    if (o.spec_augment) f = spec_augment(f, o.spec_augment_options, gen);
    feats.push_back(std::move(f));
  }
  if (feats.empty()) {  // a slice past the rows of a partial last batch
    out.features = ops::zeros({0, t_max, cache_->num_bins()}, DType::F32);
    out.lengths = Tensor::empty({0}, DType::I64);
  } else {
    FeatureBatch padded = pad_features(feats, 0.0);
    out.lengths = std::move(padded.lengths);
    out.features = std::move(padded.features);
  }
  if (out.features.size(1) < t_max) {  // the slice's rows are all shorter than the batch's longest
    Tensor whole = ops::zeros({out.features.size(0), t_max, out.features.size(2)}, DType::F32);
    whole.narrow(1, 0, out.features.size(1)).copy_(out.features);
    out.features = whole;
  }
  if (o.tokenizer) out.text = o.tokenizer->encode_batch(out.transcripts, o.text_options);
  return out;
}

SpeechBatch SpeechLoader::next() { return prefetch_.next(); }

void SpeechLoader::seek(int64_t epoch, int64_t batch_in_epoch) {
  CW_CHECK(epoch >= 0 && batch_in_epoch >= 0 && batch_in_epoch < batches_per_epoch_, IndexError,
           "SpeechLoader: seek(", epoch, ", ", batch_in_epoch, ") out of range: epochs >= 0, ",
           batches_per_epoch_, " batches per epoch");
  prefetch_.seek(epoch * batches_per_epoch_ + batch_in_epoch);
}

SpeechLoaderStats SpeechLoader::stats() const { return prefetch_.stats(); }

std::vector<SpeechBatch> eval_batches(std::shared_ptr<const FeatureCache> cache, int64_t batch_size) {
  SpeechLoader loader(std::move(cache), eval_options(batch_size));
  std::vector<SpeechBatch> batches;
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) batches.push_back(loader.batch(0, b));
  return batches;
}

}  // namespace cw::data
