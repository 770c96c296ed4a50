// Tests of data/audio_fbank.h: log-mel features against torchaudio.compliance.kaldi.fbank on real
// speech (fixture by tools/make_audio_fixture.py), frame counts, the filterbank's shape, a sine's
// energy landing in its mel bin, thread safety, and padding features into a batch.
#include "data/audio_fbank.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <numbers>
#include <optional>
#include <thread>

#include "core/error.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "data/feature_batch.h"
#include "support/check.h"

namespace cw {
namespace {

const char* kSpeech =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";
const std::string kFixture = std::string(CW_FIXTURE_DIR) + "/audio_reference.safetensors";

std::vector<float> sine(double freq, double rate, int64_t n, double amplitude = 0.5) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    x[static_cast<size_t>(i)] = static_cast<float>(
        amplitude * std::sin(2.0 * std::numbers::pi * freq * static_cast<double>(i) / rate));
  return x;
}

// Largest |a - b| and where (frame, bin), for the report.
struct Worst {
  double diff = 0.0;
  int64_t frame = 0, bin = 0;
};
Worst worst_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  Worst w;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = std::abs(static_cast<double>(x[i]) - y[i]);
    if (d > w.diff) w = {d, static_cast<int64_t>(i) / a.size(1), static_cast<int64_t>(i) % a.size(1)};
  }
  return w;
}

// The fixture's 2 s of real speech (16 kHz, read by us as by torchaudio), or nullopt when the
// Debian package holding the file is missing.
std::optional<std::vector<float>> speech_excerpt(const SafetensorsFile& fixture) {
  if (!std::filesystem::exists(kSpeech)) return std::nullopt;
  const int64_t start = std::stoll(fixture.metadata().at("excerpt_start"));
  const int64_t len = std::stoll(fixture.metadata().at("excerpt_len"));
  const data::Audio speech = data::load_audio(kSpeech);  // 16 kHz already: no resampling
  EXPECT_EQ(speech.sample_rate, 16000);
  EXPECT_GE(static_cast<int64_t>(speech.samples.size()), start + len);
  return std::vector<float>(speech.samples.begin() + start, speech.samples.begin() + start + len);
}

TEST(AudioFbank, MatchesKaldiFbankOnRealSpeech) {
  const SafetensorsFile fixture = SafetensorsFile::open(kFixture);
  const auto excerpt = speech_excerpt(fixture);
  if (!excerpt) GTEST_SKIP() << kSpeech << " missing: run tools/setup.sh (pocketsphinx-testdata)";

  const data::Fbank fbank;  // the defaults are the reference call (audio_fbank.h)
  const Tensor ours = fbank.compute(*excerpt);
  const Tensor ref = fixture.load("fbank", DType::F32);  // torchaudio, float64 waveform
  ASSERT_EQ(ours.shape(), ref.shape());
  EXPECT_EQ(ours.shape(), (Shape{198, 80}));
  const Worst w = worst_diff(ours, ref);
  std::cout << "[ fbank ] vs torchaudio kaldi.fbank (float64 waveform): max |diff| " << w.diff << " at frame "
            << w.frame << ", bin " << w.bin << "\n";
  EXPECT_LE(w.diff, 1e-3);
  EXPECT_TRUE(test::all_close(ours, ref, 1e-3, 0.0));

  // The same with torch's default dtype float64, so that torchaudio's mel filters are double
  // too: what is left is rounding, and the two implementations of Kaldi's math agree tightly.
  const Worst exact = worst_diff(ours, fixture.load("fbank_exact", DType::F32));
  std::cout << "[ fbank ] vs torchaudio kaldi.fbank (all float64): max |diff| " << exact.diff << " at frame "
            << exact.frame << ", bin " << exact.bin << "\n";
  EXPECT_LE(exact.diff, 1e-5);

  // torchaudio run in float32, as most pipelines run it: its own FFT rounding shows in the
  // quietest bins; reported, and held to a looser bound.
  const Worst w32 = worst_diff(ours, fixture.load("fbank_f32", DType::F32));
  std::cout << "[ fbank ] vs torchaudio kaldi.fbank (float32): max |diff| " << w32.diff << " at frame "
            << w32.frame << ", bin " << w32.bin << "\n";
  EXPECT_LE(w32.diff, 5e-3);
}

// Our resampler (libsoxr) against torchaudio.functional.resample, through what the model sees:
// the same speech taken 16 -> 8 -> 16 kHz by each, then the fbank. The filters differ (soxr: long,
// linear phase, passband to ~0.91 of Nyquist; torchaudio: a 6-zero-crossing Hann sinc, rolloff
// 0.99), so features agree closely in the telephone band and differ above 4 kHz, where only
// each filter's stopband leakage is left (log of near-nothing; soxr's is far lower). Reported by
// band against each other and against the features of the original 16 kHz speech.
TEST(AudioFbank, ResamplerRoundTripVsTorchaudio) {
  const SafetensorsFile fixture = SafetensorsFile::open(kFixture);
  const auto excerpt = speech_excerpt(fixture);
  if (!excerpt) GTEST_SKIP() << kSpeech << " missing: run tools/setup.sh (pocketsphinx-testdata)";
  const data::Fbank fbank;
  const Tensor ours = fbank.compute(data::resample(data::resample(*excerpt, 16000, 8000), 8000, 16000));
  const Tensor ref = fixture.load("resampled_fbank", DType::F32);
  ASSERT_EQ(ours.shape(), ref.shape());
  // Mel bins by centre frequency: below 3.4 kHz (both filters flat), 3.4-4 kHz (their transition
  // bands), above 4 kHz (stopband). Returns the mean |diff| below 3.4 kHz.
  auto report = [](const char* what, const Tensor& x, const Tensor& y) {
    const std::vector<float> a = x.to_vector<float>(), b = y.to_vector<float>();
    const double mel_low = 1127.0 * std::log(1.0 + 20.0 / 700.0),
                 mel_high = 1127.0 * std::log(1.0 + 8000.0 / 700.0);
    double max_diff[3] = {0, 0, 0}, sum[3] = {0, 0, 0};
    int64_t count[3] = {0, 0, 0};
    for (int64_t bin = 0; bin < 80; ++bin) {
      const double mel = mel_low + static_cast<double>(bin + 1) * (mel_high - mel_low) / 81.0;
      const double centre = 700.0 * (std::exp(mel / 1127.0) - 1.0);
      const int band = centre < 3400.0 ? 0 : centre < 4000.0 ? 1 : 2;
      for (int64_t t = 0; t < x.size(0); ++t) {
        const size_t i = static_cast<size_t>(t * 80 + bin);
        const double d = std::abs(static_cast<double>(a[i]) - b[i]);
        max_diff[band] = std::max(max_diff[band], d);
        sum[band] += d;
        ++count[band];
      }
    }
    const char* names[3] = {"< 3.4 kHz", "3.4-4 kHz", "> 4 kHz"};
    for (int band = 0; band < 3; ++band)
      std::cout << "[ resample ] " << what << ", bins " << names[band] << ": max |diff| " << max_diff[band]
                << ", mean " << sum[band] / static_cast<double>(count[band]) << "\n";
    return sum[0] / static_cast<double>(count[0]);
  };
  const Tensor original = fixture.load("fbank_exact", DType::F32);
  // Below 3.4 kHz the round trip through soxr leaves the features as they were (measured: mean
  // 3e-5, max 0.02); torchaudio's shorter filter moves them more (mean 0.02, max 0.67).
  EXPECT_LE(report("fbank after 16->8->16 kHz, soxr vs original", ours, original), 1e-3);
  report("fbank after 16->8->16 kHz, torchaudio vs original", ref, original);
  EXPECT_LE(report("fbank after 16->8->16 kHz, soxr vs torchaudio", ours, ref), 0.05);
}

TEST(AudioFbank, FrameCountsFollowKaldiSnipEdges) {
  const data::Fbank fbank;
  EXPECT_EQ(fbank.window_size(), 400);
  EXPECT_EQ(fbank.window_shift(), 160);
  EXPECT_EQ(fbank.fft_size(), 512);
  EXPECT_EQ(fbank.num_frames(0), 0);
  EXPECT_EQ(fbank.num_frames(399), 0);
  EXPECT_EQ(fbank.num_frames(400), 1);
  EXPECT_EQ(fbank.num_frames(559), 1);
  EXPECT_EQ(fbank.num_frames(560), 2);
  EXPECT_EQ(fbank.num_frames(16000), 98);
  EXPECT_EQ(fbank.compute(std::vector<float>(399, 0.1f)).shape(), (Shape{0, 80}));
  const Tensor f = fbank.compute(sine(440.0, 16000.0, 16000));
  EXPECT_EQ(f.shape(), (Shape{98, 80}));
  EXPECT_EQ(f.dtype(), DType::F32);
}

TEST(AudioFbank, SilenceHitsTheEpsilonFloor) {
  // Kaldi floors mel energies at FLT_EPSILON: all-zero input gives log(FLT_EPSILON) everywhere.
  const Tensor f = data::Fbank().compute(std::vector<float>(1600, 0.0f));
  const std::vector<float> v = f.to_vector<float>();
  for (float x : v) ASSERT_FLOAT_EQ(x, std::log(std::numeric_limits<float>::epsilon()));
}

TEST(AudioFbank, SineEnergyPeaksInItsMelBin) {
  const data::Fbank fbank;
  const Tensor banks = fbank.mel_banks();  // (80, 257)
  ASSERT_EQ(banks.shape(), (Shape{80, 257}));
  const std::vector<double> m = banks.to_vector<double>();
  for (int64_t b = 0; b < 80; ++b) {
    double peak = 0.0;
    for (int64_t k = 0; k < 257; ++k) {
      ASSERT_GE(m[static_cast<size_t>(b * 257 + k)], 0.0);
      peak = std::max(peak, m[static_cast<size_t>(b * 257 + k)]);
    }
    EXPECT_GT(peak, 0.4) << "bin " << b;                    // triangles are sampled at FFT bins: peak near 1
    EXPECT_EQ(m[static_cast<size_t>(b * 257 + 256)], 0.0);  // Nyquist column unused (Kaldi)
  }
  // A 2 kHz tone: FFT bin 64; the mel bin whose triangle weighs bin 64 most is the loudest.
  const Tensor f = fbank.compute(sine(2000.0, 16000.0, 4000));
  const std::vector<float> row = f.select(0, 5).contiguous().to_vector<float>();
  int64_t loudest = 0, expected = 0;
  for (int64_t b = 1; b < 80; ++b) {
    if (row[static_cast<size_t>(b)] > row[static_cast<size_t>(loudest)]) loudest = b;
    if (m[static_cast<size_t>(b * 257 + 64)] > m[static_cast<size_t>(expected * 257 + 64)]) expected = b;
  }
  EXPECT_EQ(loudest, expected);
}

TEST(AudioFbank, OptionsAndInputChecks) {
  const data::Fbank fbank;
  const std::vector<float> x = sine(300.0, 16000.0, 1600);
  EXPECT_TRUE(test::all_close(fbank.compute(ops::from_vector(x, {1600})), fbank.compute(x), 0.0, 0.0));
  EXPECT_THROW(fbank.compute(ops::zeros({2, 800})), ShapeError);
  EXPECT_THROW(fbank.compute(data::Audio{x, 8000}), ValueError);
  EXPECT_EQ(fbank.compute(data::Audio{x, 16000}).shape(), (Shape{8, 80}));
  data::FbankOptions o;
  o.num_mel_bins = 3;
  EXPECT_THROW(data::Fbank{o}, ValueError);
  o = {};
  o.high_freq = 9000.0;
  EXPECT_THROW(data::Fbank{o}, ValueError);
  o = {};
  o.sample_rate = 8000.0;  // 200-sample window, 256-point FFT
  o.num_mel_bins = 40;
  const data::Fbank narrow(o);
  EXPECT_EQ(narrow.fft_size(), 256);
  EXPECT_EQ(narrow.compute(sine(300.0, 8000.0, 800)).shape(), (Shape{8, 40}));
}

TEST(AudioFbank, ConcurrentComputeIsDeterministic) {
  const data::Fbank fbank;
  const std::vector<float> x = sine(523.25, 16000.0, 32000, 0.3);
  const Tensor expected = fbank.compute(x);
  std::vector<Tensor> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) threads.emplace_back([&, i] { results[i] = fbank.compute(x); });
  for (auto& t : threads) t.join();
  for (const Tensor& r : results) EXPECT_TRUE(test::all_close(r, expected, 0.0, 0.0));
}

TEST(AudioBatch, PadsToLongestWithLengths) {
  const Tensor a = ops::full({3, 4}, 1.0), b = ops::full({5, 4}, 2.0), c = ops::zeros({0, 4});
  const data::FeatureBatch batch = data::pad_features({a, b, c}, -1.0);
  EXPECT_EQ(batch.features.shape(), (Shape{3, 5, 4}));
  EXPECT_EQ(batch.lengths.dtype(), DType::I64);
  EXPECT_EQ(batch.lengths.to_vector<int64_t>(), (std::vector<int64_t>{3, 5, 0}));
  const std::vector<float> v = batch.features.to_vector<float>();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t t = 0; t < 5; ++t)
      for (int64_t f = 0; f < 4; ++f) {
        const float expected = i == 0 ? (t < 3 ? 1.0f : -1.0f) : i == 1 ? 2.0f : -1.0f;
        ASSERT_EQ(v[static_cast<size_t>((i * 5 + t) * 4 + f)], expected) << i << " " << t << " " << f;
      }
}

TEST(AudioBatch, RejectsBadItems) {
  EXPECT_THROW(data::pad_features({}), ShapeError);
  EXPECT_THROW(data::pad_features({ops::zeros({3, 4}), ops::zeros({3, 5})}), ShapeError);
  EXPECT_THROW(data::pad_features({ops::zeros({3})}), ShapeError);
  EXPECT_THROW(data::pad_features({ops::zeros({3, 4}, DType::F64)}), ShapeError);
  EXPECT_THROW(data::pad_features({Tensor()}), ShapeError);
}

}  // namespace
}  // namespace cw
