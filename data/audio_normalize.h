// Mean/variance normalization (CMVN) of (T, F) features: per utterance, or with global
// statistics accumulated over a training set and saved as a small JSON file. Third stage of the
// audio front end, after audio_fbank.h. Part of data/.
//
// The JSON file is WeNet's global_cmvn format (wenet/tools/compute_cmvn_stats.py writes it,
// wenet/utils/cmvn.py load_cmvn reads it): {"mean_stat": [F sums], "var_stat": [F sums of
// squares], "frame_num": N}. Raw sums rather than mean/std so that statistics of shards add up,
// and so that WeNet's files and ours are interchangeable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/tensor.h"

namespace cw::data {

// Per-utterance CMVN: y[t, f] = (x[t, f] - mean_f) / sqrt(var_f + eps), mean and (biased)
// variance over the T frames of this utterance; norm_vars = false subtracts the mean only
// (Kaldi's apply-cmvn --norm-vars=false, the default there). x is f32 (T, F) on the CPU; T = 0
// gives an empty result, T = 1 zeros. eps keeps a constant bin (digital silence) finite.
Tensor utterance_cmvn(const Tensor& features, bool norm_vars = true, double eps = 1e-5);

// Global CMVN: accumulate statistics over a data set, save them, load them in training and
// apply y = (x - mean) * istd, where istd = 1 / sqrt(max(var, 1e-20)) exactly as WeNet's
// load_cmvn computes it.
class GlobalCmvn {
 public:
  GlobalCmvn() = default;
  // Empty statistics for features of `dim` bins.
  explicit GlobalCmvn(int64_t dim);

  // Adds the frames of one utterance, f32 (T, F); F must match earlier calls (ShapeError).
  void accumulate(const Tensor& features);
  // Adds another accumulator's statistics (shards computed in parallel).
  void merge(const GlobalCmvn& other);

  int64_t dim() const { return static_cast<int64_t>(sum_.size()); }
  int64_t frame_count() const { return frames_; }
  // f32 (F): mean and 1 / std over all accumulated frames; ValueError when no frame was seen.
  Tensor mean() const;
  Tensor istd() const;
  // Normalizes f32 (T, F) or (B, T, F) features (padding frames are changed too; mask them).
  Tensor apply(const Tensor& features) const;

  // WeNet global_cmvn JSON. save writes atomically (temp file + rename); load throws cw::Error
  // naming the file when it is missing, is not JSON, or has wrong or inconsistent fields.
  void save(const std::filesystem::path& path) const;
  static GlobalCmvn load(const std::filesystem::path& path);

 private:
  void check_ready(const char* op) const;

  std::vector<double> sum_, sum_sq_;  // per bin, in double: a data set has ~1e8 frames
  int64_t frames_ = 0;
};

}  // namespace cw::data
