// The log-mel feature cache: the key, and the parallel computation of the rows a build is missing
// into feature shards; see feature_cache.h.
#include "data/feature_cache.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "data/audio_io.h"

namespace cw::data {
namespace {

// Bump when the feature computation changes in a way FbankOptions does not show (a fix in
// Fbank or load_audio), so that old cache files stop matching.
constexpr const char* kFormat = "cw-feature-cache-1";

const char* window_name(FbankWindow w) {
  switch (w) {
    case FbankWindow::Hann: return "hann";
    case FbankWindow::Povey: return "povey";
    case FbankWindow::Hamming: return "hamming";
    case FbankWindow::Rectangular: return "rectangular";
  }
  return "?";
}

std::string hex64(uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, x);
  return buf;
}

// Size and modification time of an audio file; (-1, 0) when it cannot be stat'ed.
std::pair<int64_t, int64_t> file_stamp(const std::filesystem::path& p) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(p, ec);
  if (ec) return {-1, 0};
  const auto time = std::filesystem::last_write_time(p, ec);
  if (ec) return {-1, 0};
  return {static_cast<int64_t>(size),
          std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count()};
}

}  // namespace

namespace {

// <cache_dir>/<manifest stem>-<hash of the key>: the shards' common prefix.
std::filesystem::path shard_prefix(const SpeechManifest& manifest, const std::string& key,
                                   const std::filesystem::path& cache_dir) {
  return cache_dir / (manifest.path().stem().string() + "-" + hex64(fnv1a64(key.data(), key.size())));
}

std::string fbank_settings(const FbankOptions& o) {
  std::ostringstream key;
  // max_digits10: a setting that differs in the last bit gives a different key.
  key << std::setprecision(17);
  key << "fbank sample_rate=" << o.sample_rate << " frame_length_ms=" << o.frame_length_ms
      << " frame_shift_ms=" << o.frame_shift_ms << " num_mel_bins=" << o.num_mel_bins
      << " low_freq=" << o.low_freq << " high_freq=" << o.high_freq << " preemphasis=" << o.preemphasis
      << " remove_dc_offset=" << o.remove_dc_offset << " window=" << window_name(o.window)
      << " round_to_power_of_two=" << o.round_to_power_of_two << " use_power=" << o.use_power
      << " input_scale=" << o.input_scale;
  return key.str();
}

}  // namespace

FrameSource FeatureCache::fbank_source(const SpeechManifest& manifest, const FbankOptions& options,
                                       int workers, const AudioLimits& limits) {
  FrameSource s;
  s.settings = fbank_settings(options);
  s.num_bins = options.num_mel_bins;
  s.workers = workers;
  auto fbank = std::make_shared<const Fbank>(options);  // compute() is const and thread-safe
  const auto rate = static_cast<int64_t>(options.sample_rate);
  s.compute = [fbank, rate, manifest, limits](int64_t i) {
    return fbank->compute(load_audio(manifest[i].audio, rate, limits));
  };
  return s;
}

FrameSource FeatureCache::whisper_mel_source(const SpeechManifest& manifest, const WhisperMelOptions& options,
                                             int workers, const AudioLimits& limits) {
  FrameSource s;
  auto mel = std::make_shared<const WhisperMel>(options);
  s.settings = mel->key();
  s.num_bins = options.n_mels;
  s.workers = workers;
  s.compute = [mel, manifest, limits](int64_t i) {
    return mel->compute(load_audio(manifest[i].audio, 16000, limits));
  };
  return s;
}

std::string FeatureCache::cache_key(const SpeechManifest& manifest, const FbankOptions& o) {
  FrameSource s;
  s.settings = fbank_settings(o);
  return cache_key(manifest, s);
}

std::string FeatureCache::cache_key(const SpeechManifest& manifest, const FrameSource& source) {
  std::ostringstream key;
  key << kFormat << "\n"
      << source.settings << "\n"
      << "manifest " << manifest.path().filename().string() << " rows=" << manifest.size()
      << " fnv1a64=" << hex64(manifest.content_hash()) << "\n";
  if (!source.from_audio) return key.str();
  // The audio files themselves: resolved paths (two corpora with equal manifests in different
  // folders are different data), sizes and mtimes (a regenerated file invalidates the cache).
  uint64_t audio_hash = fnv1a64(nullptr, 0);
  for (const Utterance& u : manifest.utterances()) {
    std::error_code ec;
    const std::string path = std::filesystem::weakly_canonical(u.audio, ec).string();
    const std::string& p = ec ? u.audio.string() : path;
    const auto [size, mtime] = file_stamp(u.audio);
    const int64_t stamp[2] = {size, mtime};
    audio_hash = fnv1a64(p.data(), p.size() + 1, audio_hash);  // + 1: the '\0' separates paths
    audio_hash = fnv1a64(stamp, sizeof stamp, audio_hash);
  }
  key << "audio fnv1a64=" << hex64(audio_hash) << "\n";
  return key.str();
}

std::filesystem::path FeatureCache::cache_file(const SpeechManifest& manifest, const FbankOptions& options,
                                               const std::filesystem::path& cache_dir) {
  return shard_path(shard_prefix(manifest, cache_key(manifest, options), cache_dir), 0);
}

FeatureCache FeatureCache::build_or_load(const SpeechManifest& manifest, const FbankOptions& options,
                                         const std::filesystem::path& cache_dir, int num_threads,
                                         bool verbose) {
  return build_or_load(manifest, fbank_source(manifest, options, num_threads), cache_dir, verbose);
}

namespace {

// Computes rows [first, n) of `source` with `threads` workers and hands each to `take` in row
// order on the calling thread. Workers run at most `window` rows ahead of the row being taken, so
// memory holds a few rows, not the corpus. A failing row stops the taking of new rows; the workers
// finish the rows they hold, and the lowest failing row is thrown (rows are taken in order, so every
// row below it was computed and handed to `take` first, whatever the timing).
void compute_in_order(const SpeechManifest& manifest, const FrameSource& source, int64_t first, int threads,
                      const std::function<void(Tensor)>& take) {
  const int64_t n = manifest.size();
  const int64_t window = 4 * static_cast<int64_t>(threads) + 4;
  std::mutex m;
  std::condition_variable cv;
  std::map<int64_t, Tensor> ready;
  int64_t next = first, taken = first, error_row = n;
  bool stop = false;
  std::string error_message;
  auto work = [&] {
    for (;;) {
      int64_t i;
      {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return stop || next >= n || next < taken + window; });
        if (stop || next >= n) return;
        i = next++;
      }
      Tensor f;
      std::string error;
      try {
        f = source.compute(i);
        CW_CHECK(f.dim() == 2 && f.size(1) == source.num_bins && f.dtype() == DType::F32, ShapeError,
                 "frames ", describe(f), " should be (T, ", source.num_bins, ") f32");
      } catch (const std::exception& e) {
        error = e.what();
      }
      {
        std::lock_guard<std::mutex> lock(m);
        if (error.empty()) {
          ready.emplace(i, std::move(f));
        } else {
          if (i < error_row) error_row = i, error_message = error;
          stop = true;
        }
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  auto join = [&] {
    {
      std::lock_guard<std::mutex> lock(m);
      stop = true;
    }
    cv.notify_all();
    for (std::thread& t : pool) t.join();
    pool.clear();
  };
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  try {
    for (int64_t r = first; r < n; ++r) {
      Tensor f;
      {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return ready.count(r) != 0 || (stop && r >= error_row); });
        if (ready.count(r) == 0) break;  // r is the failing row
        f = std::move(ready[r]);
        ready.erase(r);
        taken = r + 1;
      }
      cv.notify_all();
      take(std::move(f));
    }
  } catch (...) {
    join();  // a failure to write: stop the workers before the frames they use go away
    throw;
  }
  join();
  if (error_row < n) {
    const Utterance& u = manifest[error_row];
    throw Error(detail::cat("FeatureCache: ", manifest.path().string(), ":", u.line, ": utterance '", u.id,
                            "': cannot compute features of ", u.audio.string(), ": ", error_message,
                            " (complete shards before it are kept; a rerun resumes there)"));
  }
}

}  // namespace

FeatureCache FeatureCache::build_or_load(const SpeechManifest& manifest, const FrameSource& source,
                                         const std::filesystem::path& cache_dir, bool verbose) {
  CW_CHECK(manifest.size() > 0, ValueError, "FeatureCache: manifest ", manifest.path().string(),
           " has no utterances");
  CW_CHECK(source.num_bins > 0 && source.compute, ValueError, "FeatureCache: the frame source of ",
           manifest.path().string(), " has no bins or no compute function");
  CW_CHECK(source.shard_bytes > 0, ValueError, "FeatureCache: shard_bytes must be > 0, got ",
           source.shard_bytes);
  FeatureCache cache;
  cache.manifest_ = manifest;
  const std::string key = cache_key(manifest, source);
  const ShardSpec spec{shard_prefix(manifest, key, cache_dir), key, manifest.size(), source.num_bins};

  std::string why;
  cache.shards_ = FeatureShards::open(spec, &why);
  if (cache.shards_.complete()) return cache;
  if (!why.empty()) std::cerr << "FeatureCache: rebuilding from " << why << "\n";

  // Build the rows after the last valid shard, in manifest order, into shards written as they fill.
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = manifest.size(), first = cache.shards_.rows_covered();
  int num_threads = source.workers;
  if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  num_threads = static_cast<int>(std::min<int64_t>(num_threads, n - first));
  if (verbose)
    std::cerr << "FeatureCache: computing features of " << n - first << " utterances of "
              << manifest.path().string()
              << (first > 0 ? " (resuming after row " + std::to_string(first) + ")" : "") << " with "
              << num_threads << " threads -> " << spec.prefix.string() << "-*.safetensors\n";
  std::filesystem::create_directories(cache_dir);
  {
    ShardWriter writer(spec, cache.shards_.num_shards(), first, source.shard_bytes);
    compute_in_order(manifest, source, first, num_threads, [&](Tensor f) { writer.append(f); });
    writer.finish();
  }
  cache.shards_ = FeatureShards::open(spec, &why);
  CW_CHECK(cache.shards_.complete(), Error, "FeatureCache: the shards of ", manifest.path().string(),
           " just written do not open: ", why);
  cache.built_ = true;
  cache.computed_ = n - first;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (verbose)
    std::cerr << "FeatureCache: " << n - first << " utterances, " << cache.total_frames() << " frames in "
              << cache.shards_.num_shards() << " shards in " << seconds << " s\n";
  return cache;
}

Tensor FeatureCache::features(int64_t i, int64_t max_frames) const {
  CW_CHECK(i >= 0 && i < size(), IndexError, "FeatureCache: row ", i, " out of range for ", size(),
           " utterances of ", manifest_.path().string());
  return shards_.read(i, max_frames);
}

int64_t FeatureCache::num_frames(int64_t i) const {
  CW_CHECK(i >= 0 && i < size(), IndexError, "FeatureCache: row ", i, " out of range for ", size(),
           " utterances of ", manifest_.path().string());
  return shards_.num_frames(i);
}

}  // namespace cw::data
