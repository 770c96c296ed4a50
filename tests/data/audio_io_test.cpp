// Tests of data/audio_io.h: reading WAV files of every sample format, rate and channel count
// (written here with libsndfile through write_audio), the libsoxr resampler's accuracy on sines
// (its effect on features against torchaudio's resampler is in audio_fbank_test.cpp), and clear
// errors for broken files.
#include "data/audio_io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

// The real speech file of the fixture (Debian package pocketsphinx-testdata).
const char* kSpeech =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";
const std::string kFixture = std::string(CW_FIXTURE_DIR) + "/audio_reference.safetensors";

// A scratch folder under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("cw_audio_test_" + name + "_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path operator/(const std::string& file) const { return path / file; }
};

std::vector<float> sine(double freq, double rate, int64_t n, double amplitude = 0.5, double phase = 0.0) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    x[static_cast<size_t>(i)] = static_cast<float>(
        amplitude * std::sin(2.0 * std::numbers::pi * freq * static_cast<double>(i) / rate + phase));
  return x;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, size_t from = 0,
                    size_t to = SIZE_MAX) {
  double worst = 0.0;
  for (size_t i = from; i < std::min({a.size(), b.size(), to}); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  return worst;
}

double rms(const std::vector<float>& x, size_t from, size_t to) {
  double s = 0.0;
  for (size_t i = from; i < to; ++i) s += static_cast<double>(x[i]) * x[i];
  return std::sqrt(s / static_cast<double>(to - from));
}

// ------------------------------------------------------------------ reading

TEST(AudioRead, EveryPcmWidthAndFloat) {
  TempDir dir("formats");
  const std::vector<float> x = sine(440.0, 16000.0, 4000);
  // Quantization step of each format (8-bit is 1/128, 16-bit 1/32768, ...); float is exact.
  const struct {
    SampleFormat format;
    const char* name;
    double tolerance;
  } cases[] = {{SampleFormat::PCM_U8, "u8", 1.0 / 128},
               {SampleFormat::PCM_16, "s16", 1.0 / 32768},
               {SampleFormat::PCM_24, "s24", 1.0 / 8388608},
               {SampleFormat::PCM_32, "s32", 1e-7},
               {SampleFormat::Float32, "f32", 0.0}};
  for (const auto& c : cases) {
    const fs::path file = dir / (std::string(c.name) + ".wav");
    write_audio(file, x, 1, 16000, c.format);
    const Audio audio = read_audio(file);
    EXPECT_EQ(audio.sample_rate, 16000) << c.name;
    ASSERT_EQ(audio.samples.size(), x.size()) << c.name;
    EXPECT_LE(max_abs_diff(audio.samples, x), c.tolerance) << c.name;
  }
}

TEST(AudioRead, StereoIsAveragedToMono) {
  TempDir dir("stereo");
  const int64_t n = 2000;
  const std::vector<float> left = sine(300.0, 22050.0, n, 0.5), right = sine(1234.0, 22050.0, n, 0.25, 1.0);
  std::vector<float> interleaved, expected;
  for (int64_t i = 0; i < n; ++i) {
    interleaved.push_back(left[static_cast<size_t>(i)]);
    interleaved.push_back(right[static_cast<size_t>(i)]);
    expected.push_back(0.5f * (left[static_cast<size_t>(i)] + right[static_cast<size_t>(i)]));
  }
  write_audio(dir / "stereo.wav", interleaved, 2, 22050, SampleFormat::Float32);
  const Audio audio = read_audio(dir / "stereo.wav");
  EXPECT_EQ(audio.sample_rate, 22050);
  ASSERT_EQ(audio.samples.size(), static_cast<size_t>(n));
  EXPECT_LE(max_abs_diff(audio.samples, expected), 1e-7);

  // Three channels of 16-bit PCM: the mean of the three.
  std::vector<float> three;
  for (int64_t i = 0; i < n; ++i) three.insert(three.end(), {0.5f, -0.25f, 0.125f});
  write_audio(dir / "three.wav", three, 3, 8000, SampleFormat::PCM_16);
  const Audio mono = read_audio(dir / "three.wav");
  EXPECT_LE(max_abs_diff(mono.samples, std::vector<float>(n, 0.125f)), 1e-7);
}

TEST(AudioRead, AnyRateLoadsAt16kHz) {
  TempDir dir("rates");
  for (int64_t rate : {8000, 22050, 44100, 16000}) {
    const int64_t n = rate / 2;  // 0.5 s
    const fs::path file = dir / ("r" + std::to_string(rate) + ".wav");
    write_audio(file, sine(1000.0, static_cast<double>(rate), n), 1, rate, SampleFormat::PCM_16);
    const Audio native = read_audio(file);
    EXPECT_EQ(native.sample_rate, rate);
    EXPECT_EQ(native.samples.size(), static_cast<size_t>(n));
    const Audio audio = load_audio(file);
    EXPECT_EQ(audio.sample_rate, 16000);
    ASSERT_EQ(audio.samples.size(), 8000u) << rate;
    // Same 1 kHz sine, now at 16 kHz: away from the edges (filter start-up), equal to the ideal
    // one within the 16-bit quantization plus the resampler's error.
    EXPECT_LE(max_abs_diff(audio.samples, sine(1000.0, 16000.0, 8000), 800, 7200), 2e-4) << rate;
  }
}

// ------------------------------------------------------------------ resampling

TEST(AudioResample, SineKeepsFrequencyAmplitudeAndPhase) {
  // Down (44.1 -> 16 kHz) and up (8 -> 16 kHz), tones inside the passband.
  for (auto [in_rate, freq] : {std::pair<int64_t, double>{44100, 1000.0},
                               {44100, 5000.0},
                               {8000, 440.0},
                               {8000, 3000.0},
                               {22050, 7000.0}}) {
    const auto n = in_rate;  // 1 s
    const std::vector<float> y = resample(sine(freq, static_cast<double>(in_rate), n), in_rate, 16000);
    ASSERT_EQ(y.size(), 16000u);
    const std::vector<float> ideal = sine(freq, 16000.0, 16000);
    // Interior only: the edges see the filter's start-up against an implicit silence.
    const double err = max_abs_diff(y, ideal, 1600, 14400);
    EXPECT_LE(err, 1e-3) << in_rate << " Hz -> 16 kHz, " << freq << " Hz tone";
    EXPECT_NEAR(rms(y, 1600, 14400), 0.5 / std::sqrt(2.0), 5e-4) << freq << " Hz";
  }
}

TEST(AudioResample, RemovesWhatLiesAboveTheNewNyquist) {
  // A 10 kHz tone cannot exist at 16 kHz (Nyquist 8 kHz): a real resampler filters it out
  // instead of folding it to 6 kHz. soxr HQ's stopband is far below -100 dB.
  const std::vector<float> y = resample(sine(10000.0, 44100.0, 44100), 44100, 16000);
  EXPECT_LE(rms(y, 1600, 14400), 1e-5) << "aliasing: 10 kHz tone leaked into 16 kHz output";
}

TEST(AudioResample, EdgeCases) {
  const std::vector<float> x = {0.1f, -0.2f, 0.3f};
  EXPECT_EQ(resample(x, 16000, 16000), x);
  EXPECT_TRUE(resample(std::vector<float>{}, 8000, 16000).empty());
  EXPECT_EQ(resample(std::vector<float>(441, 0.0f), 44100, 16000).size(), 160u);
  EXPECT_THROW(resample(x, 0, 16000), ValueError);
  EXPECT_THROW(resample(x, 16000, -1), ValueError);
}

TEST(AudioRead, RealSpeechFileMatchesTheFixturesSource) {
  if (!fs::exists(kSpeech)) GTEST_SKIP() << kSpeech << " missing: run tools/setup.sh (pocketsphinx-testdata)";
  const Audio speech = read_audio(kSpeech);
  EXPECT_EQ(speech.sample_rate, 16000);
  // The int16 values, recovered exactly from libsndfile's x / 32768, against the fixture's
  // count, sum and sum of squares (computed by Python's wave module).
  const std::vector<int64_t> sums =
      SafetensorsFile::open(kFixture).load("source_checksum").to_vector<int64_t>();
  int64_t sum = 0, sum_sq = 0;
  for (float v : speech.samples) {
    const auto s = static_cast<int64_t>(std::lround(static_cast<double>(v) * 32768.0));
    sum += s;
    sum_sq += s * s;
  }
  EXPECT_EQ(static_cast<int64_t>(speech.samples.size()), sums[0]);
  EXPECT_EQ(sum, sums[1]);
  EXPECT_EQ(sum_sq, sums[2]);
}

// ------------------------------------------------------------------ bad input

// The call throws cw::Error whose message names the file and contains `reason`.
void expect_error_naming(const fs::path& file, const std::string& reason) {
  try {
    read_audio(file);
    ADD_FAILURE() << "read_audio(" << file << ") did not throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << "expected '" << reason << "' in: " << msg;
  }
}

TEST(AudioRead, BadFilesGiveClearErrors) {
  TempDir dir("bad");
  expect_error_naming(dir / "missing.wav", "not a readable file");

  std::ofstream(dir / "empty.wav").close();
  expect_error_naming(dir / "empty.wav", "empty");

  std::ofstream(dir / "notes.wav") << "These are not the samples you are looking for.\n";
  expect_error_naming(dir / "notes.wav", "cannot read");

  write_audio(dir / "silence.wav", std::vector<float>{}, 1, 16000, SampleFormat::PCM_16);
  expect_error_naming(dir / "silence.wav", "no audio samples");

  // A 16-bit file cut in the middle of its data chunk, and one cut inside its header.
  write_audio(dir / "full.wav", sine(440.0, 16000.0, 1000), 1, 16000, SampleFormat::PCM_16);
  std::string bytes;
  {
    std::ifstream in(dir / "full.wav", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_EQ(bytes.size(), 44u + 2000u);
  std::ofstream(dir / "cut.wav", std::ios::binary) << bytes.substr(0, 1044);
  expect_error_naming(dir / "cut.wav", "truncated");
  std::ofstream(dir / "cut_header.wav", std::ios::binary) << bytes.substr(0, 30);
  expect_error_naming(dir / "cut_header.wav", "cannot read");

  EXPECT_THROW(
      write_audio(dir / "odd.wav", std::vector<float>{0.1f, 0.2f, 0.3f}, 2, 16000, SampleFormat::PCM_16),
      ValueError);
  EXPECT_THROW(
      write_audio(dir / "no_such_dir" / "x.wav", std::vector<float>{0.1f}, 1, 16000, SampleFormat::PCM_16),
      Error);
}

}  // namespace
}  // namespace cw
