// The log-mel feature cache: parallel computation, the safetensors file and its validation; see
// feature_cache.h.
#include "data/feature_cache.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/ops.h"
#include "core/safetensors.h"
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
  const std::string key = cache_key(manifest, options);
  return cache_dir /
         (manifest.path().stem().string() + "-" + hex64(fnv1a64(key.data(), key.size())) + ".safetensors");
}

bool FeatureCache::try_load(const std::filesystem::path& file, const std::string& key, std::string& why) {
  try {
    const SafetensorsFile st = SafetensorsFile::open(file.string());
    const auto& meta = st.metadata();
    const auto format = meta.find("format"), stored_key = meta.find("key");
    if (format == meta.end() || format->second != kFormat) {
      why = "not a feature cache of this format";
      return false;
    }
    if (stored_key == meta.end() || stored_key->second != key) {
      why = "its key differs from this manifest's and settings' (a hash collision or a stale file)";
      return false;
    }
    Tensor features = st.load("features", DType::F32);
    const Tensor offsets = st.load("offsets", DType::I64);
    const int64_t n = manifest_.size();
    if (features.dim() != 2 || features.size(1) != num_bins_ || offsets.dim() != 1 ||
        offsets.size(0) != n + 1) {
      why = detail::cat("unexpected shapes: features ", describe(features), ", offsets ", describe(offsets),
                        " for ", n, " utterances of ", num_bins_, " bins");
      return false;
    }
    std::vector<int64_t> off = offsets.to_vector<int64_t>();
    bool ok = off.front() == 0 && off.back() == features.size(0);
    for (size_t i = 1; ok && i < off.size(); ++i) ok = off[i] >= off[i - 1];
    if (!ok) {
      why = "offsets are not an increasing cover of the feature rows";
      return false;
    }
    features_ = std::move(features);
    offsets_ = std::move(off);
    return true;
  } catch (const Error& e) {
    why = e.what();
    return false;
  }
}

FeatureCache FeatureCache::build_or_load(const SpeechManifest& manifest, const FbankOptions& options,
                                         const std::filesystem::path& cache_dir, int num_threads,
                                         bool verbose) {
  FeatureCache cache =
      build_or_load(manifest, fbank_source(manifest, options, num_threads), cache_dir, verbose);
  cache.options_ = options;
  return cache;
}

FeatureCache FeatureCache::build_or_load(const SpeechManifest& manifest, const FrameSource& source,
                                         const std::filesystem::path& cache_dir, bool verbose) {
  CW_CHECK(manifest.size() > 0, ValueError, "FeatureCache: manifest ", manifest.path().string(),
           " has no utterances");
  CW_CHECK(source.num_bins > 0 && source.compute, ValueError, "FeatureCache: the frame source of ",
           manifest.path().string(), " has no bins or no compute function");
  FeatureCache cache;
  cache.manifest_ = manifest;
  cache.num_bins_ = source.num_bins;
  const std::string key = cache_key(manifest, source);
  cache.file_ = cache_dir / (manifest.path().stem().string() + "-" + hex64(fnv1a64(key.data(), key.size())) +
                             ".safetensors");

  if (std::filesystem::exists(cache.file_)) {
    std::string why;
    if (cache.try_load(cache.file_, key, why)) return cache;
    std::cerr << "FeatureCache: rebuilding " << cache.file_.string() << ": " << why << "\n";
  }

  // Build: workers take utterances from a shared counter (utterances differ in length, so static
  // slices would leave threads idle at the end); the first failure stops everyone.
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = manifest.size();
  int num_threads = source.workers;
  if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  num_threads = static_cast<int>(std::min<int64_t>(num_threads, n));
  if (verbose)
    std::cerr << "FeatureCache: computing features of " << n << " utterances of " << manifest.path().string()
              << " with " << num_threads << " threads -> " << cache.file_.string() << "\n";
  std::vector<Tensor> per_utterance(static_cast<size_t>(n));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  int64_t error_row = n;  // the lowest failing row, so the report does not depend on timing
  std::string error_message;
  auto work = [&] {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= n || failed.load()) return;
      try {
        Tensor f = source.compute(i);
        CW_CHECK(f.dim() == 2 && f.size(1) == source.num_bins && f.dtype() == DType::F32, ShapeError,
                 "frames ", describe(f), " should be (T, ", source.num_bins, ") f32");
        per_utterance[static_cast<size_t>(i)] = std::move(f);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (i < error_row) {
          error_row = i;
          error_message = e.what();
        }
        failed.store(true);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < num_threads; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  if (failed.load()) {
    const Utterance& u = manifest[error_row];
    throw Error(detail::cat("FeatureCache: ", manifest.path().string(), ":", u.line, ": utterance '", u.id,
                            "': cannot compute features of ", u.audio.string(), ": ", error_message,
                            " (no cache written)"));
  }

  // One (sum T_i, F) tensor, so the file is a single mapping and features(i) a view. Each
  // utterance's tensor is released once copied, so the peak stays near one copy.
  std::vector<int64_t> offsets(static_cast<size_t>(n + 1), 0);
  for (int64_t i = 0; i < n; ++i)
    offsets[static_cast<size_t>(i + 1)] =
        offsets[static_cast<size_t>(i)] + per_utterance[static_cast<size_t>(i)].size(0);
  const int64_t bins = source.num_bins;
  Tensor all = Tensor::empty({offsets.back(), bins}, DType::F32);
  for (int64_t i = 0; i < n; ++i) {
    Tensor& f = per_utterance[static_cast<size_t>(i)];
    if (f.numel() > 0)
      std::memcpy(all.data<float>() + offsets[static_cast<size_t>(i)] * bins, f.contiguous().data<float>(),
                  static_cast<size_t>(f.numel()) * sizeof(float));
    f = Tensor();
  }
  std::filesystem::create_directories(cache_dir);
  save_safetensors(cache.file_.string(),
                   {{"features", all}, {"offsets", ops::from_vector<int64_t>(offsets, {n + 1})}},
                   {{"format", kFormat}, {"key", key}});
  cache.features_ = all;
  cache.offsets_ = std::move(offsets);
  cache.built_ = true;
  cache.computed_ = n;
  cache.build_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (verbose)
    std::cerr << "FeatureCache: " << n << " utterances, " << cache.total_frames() << " frames in "
              << cache.build_seconds_ << " s\n";
  return cache;
}

Tensor FeatureCache::features(int64_t i) const {
  CW_CHECK(i >= 0 && i < size(), IndexError, "FeatureCache: row ", i, " out of range for ", size(),
           " utterances of ", file_.string());
  const auto k = static_cast<size_t>(i);
  return features_.narrow(0, offsets_[k], offsets_[k + 1] - offsets_[k]);
}

int64_t FeatureCache::num_frames(int64_t i) const {
  CW_CHECK(i >= 0 && i < size(), IndexError, "FeatureCache: row ", i, " out of range for ", size(),
           " utterances of ", file_.string());
  const auto k = static_cast<size_t>(i);
  return offsets_[k + 1] - offsets_[k];
}

}  // namespace cw::data
