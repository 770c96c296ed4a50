// The on-disk log-mel feature cache of a speech manifest: every utterance is read, resampled to
// 16 kHz (load_audio) and turned into Kaldi fbank features (Fbank) once, in parallel, and the
// result is kept in one safetensors file that later runs map instead of recomputing. Sits between
// data/speech_manifest.h and data/speech_loader.h. Part of data/.
//
// File: <cache_dir>/<manifest stem>-<16 hex digits>.safetensors holding
//   "features" f32 (sum of T_i, F)   every utterance's frames, in manifest order
//   "offsets"  i64 (N + 1)           utterance i is rows [offsets[i], offsets[i + 1])
// and metadata {"format": "cw-feature-cache-1", "key": <the key text below>}. It loads in Python
// with safetensors.numpy.load_file. f32, not f16: the loader normalizes per utterance, and an f16
// copy of log-mel values (up to ~25) would round them by up to 0.008; the small corpus is a few
// hundred MB either way.
//
// Key: the hex digits are FNV-1a of a text naming the cache format version, every FbankOptions
// field, the manifest's bytes, and each audio file's resolved path, size and modification time.
// Different front-end settings, an edited manifest or a regenerated audio file give a different
// file; the full key text is stored in the file and compared on load, so a hash collision cannot
// hand back the wrong features. A file that fails to open or validate is rebuilt (with a warning on
// stderr), since it is only a cache. Old files are never deleted: remove the folder to reclaim
// space.
//
// Failure policy (a documented choice): a missing, unreadable or corrupt audio file fails the whole
// build with a cw::Error naming the audio path, the manifest file and its line; nothing is written,
// so no partial cache exists. A corpus must be complete before training on it, and a silently
// skipped row would shift the benchmark counts.
//
// Writing is atomic (save_safetensors: temporary file, fsync, rename), so an interrupted build
// leaves no cache file, and two processes building the same cache at once both succeed (the last
// rename wins; the contents are equal). Memory: the build holds every feature once in RAM (about
// 32 KB per second of audio) before writing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/audio_fbank.h"
#include "data/audio_io.h"
#include "data/speech_manifest.h"
#include "data/whisper_mel.h"

namespace cw::data {

// What a cache holds: frames computed per manifest row, and the text naming how (its key). The
// Kaldi fbank of the Conformer and Whisper's log-mel read the audio; a tower's frozen lower part
// (train/) computes its frames from another cache's, with from_audio false.
struct FrameSource {
  std::string settings;    // one line naming every setting the frames depend on (goes into the key)
  int64_t num_bins = 0;    // columns per frame
  bool from_audio = true;  // the audio files' paths, sizes and mtimes go into the key
  int workers = 0;         // rows computed in parallel (<= 0: one per hardware thread)
  std::function<Tensor(int64_t row)> compute;  // f32 (T_i, num_bins); thread-safe when workers > 1
};

class FeatureCache {
 public:
  // Loads the cache file of (manifest, options) from cache_dir, or computes it with num_threads
  // workers (<= 0: one per hardware thread) and writes it there (the folder is created). An empty
  // manifest is a ValueError. verbose prints one line before and after a build to stderr.
  static FeatureCache build_or_load(const SpeechManifest& manifest, const FbankOptions& options,
                                    const std::filesystem::path& cache_dir, int num_threads = 0,
                                    bool verbose = false);
  // The same for any source of frames (rows computed by source.compute).
  static FeatureCache build_or_load(const SpeechManifest& manifest, const FrameSource& source,
                                    const std::filesystem::path& cache_dir, bool verbose = false);
  // The sources of the two audio front ends: each row's audio read at 16 kHz (load_audio), then
  // Kaldi fbank or Whisper's log-mel.
  // `limits` bound what an audio file's header may declare (data/audio_io.h); they change no
  // frames, so they are not part of the cache key.
  static FrameSource fbank_source(const SpeechManifest& manifest, const FbankOptions& options,
                                  int workers = 0, const AudioLimits& limits = {});
  static FrameSource whisper_mel_source(const SpeechManifest& manifest, const WhisperMelOptions& options,
                                        int workers = 0, const AudioLimits& limits = {});

  // The key text and the file path build_or_load uses (stats every audio file; missing files
  // count as size -1, so the build then reports them).
  static std::string cache_key(const SpeechManifest& manifest, const FbankOptions& options);
  static std::string cache_key(const SpeechManifest& manifest, const FrameSource& source);
  static std::filesystem::path cache_file(const SpeechManifest& manifest, const FbankOptions& options,
                                          const std::filesystem::path& cache_dir);

  int64_t size() const { return static_cast<int64_t>(offsets_.size()) - 1; }
  int64_t num_bins() const { return num_bins_; }
  // Features of manifest row i: f32 (T_i, F), a view into the mapped file (copy-on-write: writing
  // into it is private to this process but shared by every holder of this cache; clone first).
  Tensor features(int64_t i) const;
  int64_t num_frames(int64_t i) const;
  int64_t total_frames() const { return features_.size(0); }

  const SpeechManifest& manifest() const { return manifest_; }
  const FbankOptions& fbank_options() const { return options_; }  // the defaults unless fbank
  const std::filesystem::path& file() const { return file_; }
  // Whether this call computed the features (false: loaded from the file), how many utterances it
  // computed, and the wall time of the computation and write (0 when loaded).
  bool was_built() const { return built_; }
  int64_t computed_utterances() const { return computed_; }
  double build_seconds() const { return build_seconds_; }

 private:
  FeatureCache() = default;
  // Opens and validates a cache file against the expected key; false (with the reason) when it
  // does not match.
  bool try_load(const std::filesystem::path& file, const std::string& key, std::string& why);

  SpeechManifest manifest_;
  FbankOptions options_;
  std::filesystem::path file_;
  Tensor features_;               // f32 (sum T_i, F)
  std::vector<int64_t> offsets_;  // N + 1 row offsets
  int64_t num_bins_ = 0;
  bool built_ = false;
  int64_t computed_ = 0;
  double build_seconds_ = 0.0;
};

}  // namespace cw::data
