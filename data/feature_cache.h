// The on-disk log-mel feature cache of a speech manifest: every utterance is read, resampled to
// 16 kHz (load_audio) and turned into Kaldi fbank features (Fbank) once, in parallel, and the
// result is kept in fixed-size feature shards (data/feature_shards.h) that later runs read row by
// row instead of recomputing. Sits between data/speech_manifest.h and data/speech_loader.h. Part
// of data/.
//
// Files: <cache_dir>/<manifest stem>-<16 hex digits>-NNNNN.safetensors, shards of at most
// FrameSource::shard_bytes (256 MB by default) of frames, each holding a run of utterances in
// manifest order ("features" f32 (sum of T_i, F), "offsets" i64 (R + 1); format in
// feature_shards.h). A corpus under 256 MB of frames is one file. f32, not f16: the loader
// normalizes per utterance, and an f16 copy of log-mel values (up to ~25) would round them by up to
// 0.008.
//
// Key: the hex digits are FNV-1a of a text naming the cache format version, every FbankOptions
// field, the manifest's bytes, and each audio file's resolved path, size and modification time.
// Different front-end settings, an edited manifest or a regenerated audio file give different
// files; the full key text is stored in every shard and compared on load, so a hash collision
// cannot hand back the wrong features. The shard size is not in the key: shards of another size
// hold the same frames and are read as they are. A shard that fails to open or validate is rebuilt
// from there on (with a warning on stderr), since it is only a cache. Old files are never deleted:
// remove the folder to reclaim space.
//
// Building is resumable: shards are written one at a time, atomically (temporary file, fsync,
// rename), as soon as they are full, so an interrupted or failed build keeps its complete shards
// and the next build_or_load computes only the rows after them. Two processes building the same
// cache at once both succeed (the last rename of each shard wins; the contents are equal).
//
// Failure policy (a documented choice): a missing, unreadable or corrupt audio file fails the
// build with a cw::Error naming the audio path, the manifest file and its line; the shards before
// that row stay (a rerun after fixing the file resumes there), but no cache is usable until every
// row is computed. A corpus must be complete before training on it, and a silently skipped row
// would shift the benchmark counts.
//
// Memory, built or loaded: one shard's buffer while building, a few rows in flight, and an index
// of 16 bytes per utterance; frames are read (pread) only when a row is asked for, into a fresh
// tensor. The memory of a training run does not grow with the corpus' frames (BENCHMARKS.md,
// "Data at scale").
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/audio_fbank.h"
#include "data/audio_io.h"
#include "data/feature_shards.h"
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
  int64_t shard_bytes = kDefaultShardBytes;    // storage only: frames per shard file (not in the key)
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

  // The key text and the path of the first shard build_or_load uses (stats every audio file;
  // missing files count as size -1, so the build then reports them).
  static std::string cache_key(const SpeechManifest& manifest, const FbankOptions& options);
  static std::string cache_key(const SpeechManifest& manifest, const FrameSource& source);
  static std::filesystem::path cache_file(const SpeechManifest& manifest, const FbankOptions& options,
                                          const std::filesystem::path& cache_dir);

  int64_t size() const { return manifest_.size(); }
  int64_t num_bins() const { return shards_.spec().num_bins; }
  // Features of manifest row i: f32 (T_i, F), or its first max_frames frames when max_frames > 0,
  // read from its shard into a fresh tensor (thread-safe; the caller owns it).
  Tensor features(int64_t i, int64_t max_frames = 0) const;
  int64_t num_frames(int64_t i) const;
  int64_t total_frames() const { return shards_.total_frames(); }

  const SpeechManifest& manifest() const { return manifest_; }
  // The first shard (the only one below shard_bytes of frames); all of them: shards().
  std::filesystem::path file() const { return shards_.file(0); }
  const FeatureShards& shards() const { return shards_; }
  // Whether this call computed features (false: every shard loaded) and how many utterances it
  // computed (fewer than size() when it resumed a partial build).
  bool was_built() const { return built_; }
  int64_t computed_utterances() const { return computed_; }

 private:
  FeatureCache() = default;

  SpeechManifest manifest_;
  FeatureShards shards_;  // complete: every manifest row
  bool built_ = false;
  int64_t computed_ = 0;
};

}  // namespace cw::data
