// A tiny synthetic speech corpus for the manifest, feature-cache and loader tests: WAV files of
// sines and noise at several lengths and sample rates (written with libsndfile through
// write_audio) and a manifest in the corpus format of tools/make_speech_corpus.py, in a scratch
// folder removed at the end of the test.
#pragma once

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <string>
#include <vector>

#include "data/audio_io.h"
#include "data/feature_cache.h"

namespace cw::test {

namespace fs = std::filesystem;

// A scratch folder under the system temp dir, removed at the end of the test.
struct SpeechTempDir {
  fs::path path;
  explicit SpeechTempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("cw_speech_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~SpeechTempDir() { fs::remove_all(path); }
  SpeechTempDir(const SpeechTempDir&) = delete;
  SpeechTempDir& operator=(const SpeechTempDir&) = delete;
  fs::path operator/(const std::string& file) const { return path / file; }
};

// Whether two caches hold the same rows, frame for frame and bit for bit.
inline bool same_features(const data::FeatureCache& a, const data::FeatureCache& b) {
  if (a.size() != b.size()) return false;
  for (int64_t i = 0; i < a.size(); ++i)
    if (a.features(i).shape() != b.features(i).shape() ||
        a.features(i).to_vector<float>() != b.features(i).to_vector<float>())
      return false;
  return true;
}

inline void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline const std::string kManifestHeader = "id\taudio\ttranscript\tvoice\tduration\tsplit\tlabel\n";

// Writes `count` WAVs under <dir>/audio/ and <dir>/<name>.tsv listing them: utterance i lasts
// 0.2 + 0.137 * ((i * 7) % count) s (so lengths are all different and not in manifest order), is a
// sine (even i) or seeded noise (odd i), and is stored at 8, 16, 22.05 or 44.1 kHz in turn, in
// 16-bit PCM or float. Returns the manifest path.
inline fs::path write_tiny_corpus(const fs::path& dir, int count = 13, const std::string& name = "train") {
  const int64_t rates[] = {16000, 8000, 22050, 44100};
  std::string tsv = kManifestHeader;
  uint32_t noise_state = 12345;
  for (int i = 0; i < count; ++i) {
    const int64_t rate = rates[i % 4];
    const double seconds = 0.2 + 0.137 * ((i * 7) % count);
    const auto n = static_cast<int64_t>(seconds * static_cast<double>(rate));
    std::vector<float> x(static_cast<size_t>(n));
    const double freq = 200.0 + 150.0 * i;
    for (int64_t k = 0; k < n; ++k) {
      if (i % 2 == 0) {
        x[static_cast<size_t>(k)] =
            static_cast<float>(0.4 * std::sin(2.0 * std::numbers::pi * freq * static_cast<double>(k) / rate));
      } else {
        noise_state = noise_state * 1664525u + 1013904223u;  // LCG: reproducible noise
        x[static_cast<size_t>(k)] = static_cast<float>((noise_state >> 8) * (1.0 / 16777216.0) - 0.5) * 0.3f;
      }
    }
    const std::string id = name + "_" + std::to_string(1000 + i);
    const std::string rel = "audio/" + id + ".wav";
    fs::create_directories(dir / "audio");
    data::write_audio(dir / rel, x, 1, rate,
                      i % 3 == 0 ? data::SampleFormat::Float32 : data::SampleFormat::PCM_16);
    tsv += id + "\t" + rel + "\tsay number " + std::to_string(i) + "\tvoice" + std::to_string(i % 3) + "\t" +
           std::to_string(seconds) + "\t" + name + "\t" + (i % 2 ? "label" + std::to_string(i % 5) : "") +
           "\n";
  }
  const fs::path manifest = dir / (name + ".tsv");
  write_text(manifest, tsv);
  return manifest;
}

}  // namespace cw::test
