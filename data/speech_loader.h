// Batches of log-mel features (and optionally tokenized transcripts) for the speech tower, drawn
// from a FeatureCache: seeded shuffling, length bucketing, per-utterance CMVN, cropping,
// SpecAugment, zero padding, and background threads that prepare batches ahead of the trainer.
// Last stage of the speech data path (speech_manifest.h -> feature_cache.h -> here). Part of data/.
//
// Determinism: what a batch holds is a pure function of (seed, epoch, batch_in_epoch) and the
// options: the epoch's order comes from a Philox key derived from (seed, epoch), the batch's
// SpecAugment masks from a Generator seeded with a key derived from (seed, epoch, batch_in_epoch).
// Worker threads only decide when a batch is computed, never what it holds, so results do not
// depend on num_workers or on thread timing, and seek() resumes exactly.
//
// One epoch (shuffle on, bucket_by_length on):
//   1. shuffle the N rows (Fisher-Yates); with drop_last, keep the first floor(N / B) * B of them
//      (the dropped rows differ from epoch to epoch);
//   2. cut the order into windows of bucket_window * B rows and sort each window by frame count
//      (stable), so a batch holds utterances of similar length and little padding;
//   3. cut into batches of B and shuffle the batch order, so lengths do not rise within a window.
// Without bucketing, batches are consecutive slices of the shuffled order. With shuffle off the
// order is the manifest's (eval_options()).
//
// Per batch, for each row in batch order: read the row's first max_frames frames from the cache's
// shards (all of them when max_frames is 0; deterministic, and the start of an utterance carries its
// first words), normalize (utterance_cmvn, norm_vars = true), apply SpecAugment (after CMVN, so the
// mask value 0 is the mean), then pad with zeros to (B, T_max, F). Only the rows of the batch are
// read, and with a slice (a rank's rows of the global batch) only the slice's.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/audio_specaugment.h"
#include "data/feature_cache.h"
#include "data/prefetcher.h"
#include "data/wordpiece_tokenizer.h"

namespace cw::data {

struct SpeechLoaderOptions {
  int64_t batch_size = 32;
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = true;  // every batch has batch_size rows (a partial last batch is dropped)
  // Sort within windows of bucket_window batches by length, then shuffle the batch order.
  bool bucket_by_length = true;
  int64_t bucket_window = 20;
  bool spec_augment = false;
  SpecAugmentOptions spec_augment_options{};
  std::string normalization = "utterance";  // "utterance" (utterance_cmvn) | "none"
  int64_t max_frames = 0;                   // keep the first max_frames frames (0: no crop)
  // Background threads preparing batches; 0 = synchronous, next() computes the batch itself.
  int num_workers = 2;
  // Batches prepared (or in preparation) ahead of the consumer; at least 1.
  int prefetch_batches = 4;
  // The rows of every batch whose features this process reads: [slice_offset, slice_offset +
  // slice_count), a rank's part of the global batch (dist::shard_rows); slice_count 0 reads every
  // row. Indices, transcripts and text stay the whole batch's, and the padding is to the whole
  // batch's longest row, so the slice equals those rows of the unsliced batch. SpecAugment draws
  // the whole batch's masks either way, so the masks do not depend on the slice.
  int64_t slice_offset = 0, slice_count = 0;
  // Optional: tokenize the transcripts of each batch into SpeechBatch::text.
  std::shared_ptr<const WordPieceTokenizer> tokenizer;
  EncodeOptions text_options{};
};

// Options of the deterministic evaluation pass: every row once, in manifest order, the last
// partial batch kept, no augmentation, utterance CMVN, synchronous.
SpeechLoaderOptions eval_options(int64_t batch_size);

struct SpeechBatch {
  // Rows [slice_offset, slice_offset + B_s) of the batch (all B without a slice):
  Tensor features;  // f32 (B_s, T_max, F), zero padded to the whole batch's T_max
  Tensor lengths;   // i64 (B_s) real frames (padding mask: t >= lengths[b])
  int64_t slice_offset = 0;
  std::vector<int64_t> indices;          // manifest rows of this batch, in batch order
  std::vector<std::string> transcripts;  // their transcripts, in batch order
  BatchEncoding text;                    // tokenized transcripts; undefined without a tokenizer
  int64_t epoch = 0, batch_in_epoch = 0;
};

// Counters for the throughput report (batches, consumer wait, production time).
using SpeechLoaderStats = PrefetchStats;

class SpeechLoader {
 public:
  // Throws ValueError for bad options (naming the option), or when drop_last leaves no batch.
  SpeechLoader(std::shared_ptr<const FeatureCache> cache, SpeechLoaderOptions options);
  SpeechLoader(const SpeechLoader&) = delete;
  SpeechLoader& operator=(const SpeechLoader&) = delete;

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  // The next batch; endless: after the last batch of epoch e comes batch 0 of epoch e + 1,
  // reshuffled. Rethrows an error raised while preparing that batch. Call from one thread.
  SpeechBatch next();
  // Moves the position: the next next() returns batch b of epoch e exactly as an uninterrupted
  // run would. Discards prepared batches. IndexError for b outside [0, batches_per_epoch()).
  void seek(int64_t epoch, int64_t batch_in_epoch);
  // Position of the batch the next next() returns.
  int64_t epoch() const { return prefetch_.position() / batches_per_epoch_; }
  int64_t batch_in_epoch() const { return prefetch_.position() % batches_per_epoch_; }

  // The pure functions behind next(): the rows of every batch of an epoch, and one batch (computed
  // on the calling thread, independent of the loader's position).
  std::vector<std::vector<int64_t>> epoch_plan(int64_t epoch) const;
  SpeechBatch batch(int64_t epoch, int64_t batch_in_epoch) const;

  SpeechLoaderStats stats() const;
  const SpeechLoaderOptions& options() const { return options_; }
  const FeatureCache& cache() const { return *cache_; }

 private:
  // The epoch's plan, shared by the workers (computed once per epoch, a few kept).
  std::shared_ptr<const std::vector<std::vector<int64_t>>> plan_for(int64_t epoch) const;
  SpeechBatch make_batch(int64_t epoch, int64_t b, const std::vector<std::vector<int64_t>>& plan) const;

  std::shared_ptr<const FeatureCache> cache_;
  SpeechLoaderOptions options_;
  int64_t batches_per_epoch_ = 0;

  mutable std::mutex plan_mutex_;
  mutable std::map<int64_t, std::shared_ptr<const std::vector<std::vector<int64_t>>>> plans_;

  // Batch k = epoch * batches_per_epoch + batch_in_epoch, prepared ahead by worker threads.
  // Declared last: destroyed first, so its workers stop before what they read goes away.
  OrderedPrefetcher<SpeechBatch> prefetch_;
};

// Every batch of eval_options(batch_size) over the cache, in order (all rows, last batch partial).
std::vector<SpeechBatch> eval_batches(std::shared_ptr<const FeatureCache> cache, int64_t batch_size);

}  // namespace cw::data
