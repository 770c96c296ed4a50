// Tests of data/audio_io.h: reading WAV files of every sample format, rate and channel count
// (written here with libsndfile through write_audio), the libsoxr resampler's accuracy on sines
// (its effect on features against torchaudio's resampler is in audio_fbank_test.cpp), clear
// errors for broken files, and crafted headers (issue 24) refused without crash or big allocation.
#include "data/audio_io.h"

#include <gtest/gtest.h>
#include <sndfile.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"
#include "support/peak_memory.h"

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
    data::SampleFormat format;
    const char* name;
    double tolerance;
  } cases[] = {{data::SampleFormat::PCM_U8, "u8", 1.0 / 128},
               {data::SampleFormat::PCM_16, "s16", 1.0 / 32768},
               {data::SampleFormat::PCM_24, "s24", 1.0 / 8388608},
               {data::SampleFormat::PCM_32, "s32", 1e-7},
               {data::SampleFormat::Float32, "f32", 0.0}};
  for (const auto& c : cases) {
    const fs::path file = dir / (std::string(c.name) + ".wav");
    data::write_audio(file, x, 1, 16000, c.format);
    const data::Audio audio = data::read_audio(file);
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
  data::write_audio(dir / "stereo.wav", interleaved, 2, 22050, data::SampleFormat::Float32);
  const data::Audio audio = data::read_audio(dir / "stereo.wav");
  EXPECT_EQ(audio.sample_rate, 22050);
  ASSERT_EQ(audio.samples.size(), static_cast<size_t>(n));
  EXPECT_LE(max_abs_diff(audio.samples, expected), 1e-7);

  // Three channels of 16-bit PCM: the mean of the three.
  std::vector<float> three;
  for (int64_t i = 0; i < n; ++i) three.insert(three.end(), {0.5f, -0.25f, 0.125f});
  data::write_audio(dir / "three.wav", three, 3, 8000, data::SampleFormat::PCM_16);
  const data::Audio mono = data::read_audio(dir / "three.wav");
  EXPECT_LE(max_abs_diff(mono.samples, std::vector<float>(n, 0.125f)), 1e-7);
}

TEST(AudioRead, AnyRateLoadsAt16kHz) {
  TempDir dir("rates");
  for (int64_t rate : {8000, 22050, 44100, 16000}) {
    const int64_t n = rate / 2;  // 0.5 s
    const fs::path file = dir / ("r" + std::to_string(rate) + ".wav");
    data::write_audio(file, sine(1000.0, static_cast<double>(rate), n), 1, rate, data::SampleFormat::PCM_16);
    const data::Audio native = data::read_audio(file);
    EXPECT_EQ(native.sample_rate, rate);
    EXPECT_EQ(native.samples.size(), static_cast<size_t>(n));
    const data::Audio audio = data::load_audio(file);
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
    const std::vector<float> y = data::resample(sine(freq, static_cast<double>(in_rate), n), in_rate, 16000);
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
  const std::vector<float> y = data::resample(sine(10000.0, 44100.0, 44100), 44100, 16000);
  EXPECT_LE(rms(y, 1600, 14400), 1e-5) << "aliasing: 10 kHz tone leaked into 16 kHz output";
}

TEST(AudioResample, EdgeCases) {
  const std::vector<float> x = {0.1f, -0.2f, 0.3f};
  EXPECT_EQ(data::resample(x, 16000, 16000), x);
  EXPECT_TRUE(data::resample(std::vector<float>{}, 8000, 16000).empty());
  EXPECT_EQ(data::resample(std::vector<float>(441, 0.0f), 44100, 16000).size(), 160u);
  EXPECT_THROW(data::resample(x, 0, 16000), ValueError);
  EXPECT_THROW(data::resample(x, 16000, -1), ValueError);
}

TEST(AudioRead, RealSpeechFileMatchesTheFixturesSource) {
  if (!fs::exists(kSpeech)) GTEST_SKIP() << kSpeech << " missing: run tools/setup.sh (pocketsphinx-testdata)";
  const data::Audio speech = data::read_audio(kSpeech);
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
    data::read_audio(file);
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

  data::write_audio(dir / "silence.wav", std::vector<float>{}, 1, 16000, data::SampleFormat::PCM_16);
  expect_error_naming(dir / "silence.wav", "no audio samples");

  // A 16-bit file cut in the middle of its data chunk, and one cut inside its header.
  data::write_audio(dir / "full.wav", sine(440.0, 16000.0, 1000), 1, 16000, data::SampleFormat::PCM_16);
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

  EXPECT_THROW(data::write_audio(dir / "odd.wav", std::vector<float>{0.1f, 0.2f, 0.3f}, 2, 16000,
                                 data::SampleFormat::PCM_16),
               ValueError);
  EXPECT_THROW(data::write_audio(dir / "no_such_dir" / "x.wav", std::vector<float>{0.1f}, 1, 16000,
                                 data::SampleFormat::PCM_16),
               Error);
}

// ------------------------------------------------------------------ untrusted headers (issue 24)

constexpr int64_t kMiB = int64_t{1} << 20;

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void put_file(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

// The message of the cw::Error that `fn` throws ("" when none).
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(AudioResample, AnyLengthAndRatioGivesRoundedLengthWithoutCrashing) {
  // One sample at 44.1 kHz is 0.36 samples at 16 kHz: libsoxr was handed an empty (null) output
  // buffer and crashed. Every short length, rounding to 0, 1 or a few samples, either way.
  for (const int64_t rate : {1000, 8000, 44100, 48000, 384000, 100'000'000}) {
    for (int64_t n = 0; n <= 40; ++n) {
      const std::vector<float> x(static_cast<size_t>(n), 0.5f);
      const auto expected = [&](int64_t in, int64_t out) {
        return static_cast<size_t>(std::llround(static_cast<double>(n) * out / static_cast<double>(in)));
      };
      EXPECT_EQ(data::resample(x, rate, 16000).size(), expected(rate, 16000)) << rate << " Hz, " << n;
      if (rate <= 384000) {
        EXPECT_EQ(data::resample(x, 16000, rate).size(), expected(16000, rate)) << rate << ", " << n;
      }
    }
  }
  EXPECT_EQ(data::resample(std::vector<float>{0.5f, 0.5f}, 1, 16000).size(), 32000u);
}

TEST(AudioRead, OneSampleAtCdRatesLoadsAsNoSamples) {
  TempDir dir("one_sample");
  for (const int64_t rate : {44100, 48000}) {
    const fs::path file = dir / ("one_" + std::to_string(rate) + ".wav");
    data::write_audio(file, std::vector<float>{0.25f}, 1, rate, data::SampleFormat::PCM_16);
    ASSERT_EQ(fs::file_size(file), 46u);  // the reviewer's 46-byte file
    const data::Audio audio = data::load_audio(file);
    EXPECT_EQ(audio.sample_rate, 16000);
    EXPECT_TRUE(audio.samples.empty()) << audio.samples.size();
  }
  data::write_audio(dir / "two.wav", std::vector<float>{0.25f, 0.25f}, 1, 44100, data::SampleFormat::PCM_16);
  EXPECT_EQ(data::load_audio(dir / "two.wav").samples.size(), 1u);
}

TEST(AudioRead, SampleRatesOutsideTheLimitsAreRefusedBeforeAllocating) {
  TempDir dir("rates_limits");
  // 1 Hz: 100,000 samples would become 1.6e9 at 16 kHz (6 GiB); 100 MHz crashed the resampler.
  data::write_audio(dir / "1hz.wav", std::vector<float>(100000, 0.1f), 1, 1, data::SampleFormat::PCM_16);
  data::write_audio(dir / "100mhz.wav", std::vector<float>(3, 0.1f), 1, 100'000'000,
                    data::SampleFormat::PCM_16);
  const int64_t growth = test::peak_memory_growth([&] {
    expect_error_naming(dir / "1hz.wav", "sample rate 1 Hz is outside the accepted 4000 to 384000 Hz");
    expect_error_naming(dir / "100mhz.wav", "sample rate 100000000 Hz is outside");
    EXPECT_THROW(data::load_audio(dir / "1hz.wav"), Error);
  });
  EXPECT_LT(growth, 64 * kMiB);
  // Wider limits, asked for, read them; the resampler copes with either ratio.
  const data::AudioLimits any_rate{.min_rate = 1, .max_rate = 1'000'000'000, .max_seconds = 1e6};
  EXPECT_EQ(data::read_audio(dir / "1hz.wav", any_rate).samples.size(), 100000u);
  EXPECT_TRUE(data::load_audio(dir / "100mhz.wav", 16000, any_rate).samples.empty());
  data::write_audio(dir / "1hz_short.wav", std::vector<float>(3, 0.1f), 1, 1, data::SampleFormat::PCM_16);
  EXPECT_EQ(data::load_audio(dir / "1hz_short.wav", 16000, any_rate).samples.size(), 48000u);
}

TEST(AudioRead, DurationAboveTheLimitIsRefused) {
  TempDir dir("duration");
  data::write_audio(dir / "2s.wav", sine(440.0, 8000.0, 16000), 1, 8000, data::SampleFormat::PCM_16);
  EXPECT_EQ(data::read_audio(dir / "2s.wav").samples.size(), 16000u);
  const std::string m =
      error_of([&] { data::read_audio(dir / "2s.wav", data::AudioLimits{.max_seconds = 1.5}); });
  EXPECT_NE(m.find((dir / "2s.wav").string()), std::string::npos) << m;
  EXPECT_NE(m.find("16000 frames at 8000 Hz (2 s), longer than the limit of 1.5 s"), std::string::npos) << m;
}

// A 16 kHz mono FLAC of 4000 frames whose STREAMINFO then declares `declared` frames.
void write_flac_declaring(const fs::path& path, uint64_t declared) {
  SF_INFO info{};
  info.samplerate = 16000;
  info.channels = 1;
  info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
  const std::vector<float> x = sine(440.0, 16000.0, 4000);
  ASSERT_EQ(sf_writef_float(f, x.data(), 4000), 4000);
  sf_close(f);
  // "fLaC", a 4-byte block header, then STREAMINFO; its 36-bit total sample count takes the low
  // 4 bits of byte 21 and bytes 22..25 of the file (big-endian).
  std::string b = file_bytes(path);
  ASSERT_EQ(b.substr(0, 4), "fLaC");
  b[21] = static_cast<char>((b[21] & 0xF0) | ((declared >> 32) & 0x0F));
  for (int i = 0; i < 4; ++i) b[22 + i] = static_cast<char>(declared >> (24 - 8 * i));
  put_file(path, b);
}

TEST(AudioRead, HeaderDeclaringBillionsOfFramesIsNotAllocated) {
  TempDir dir("declared");
  const fs::path flac29 = dir / "2p29.flac", flac35 = dir / "2p35.flac", wav = dir / "2p29.wav";
  write_flac_declaring(flac29, uint64_t{1} << 29);
  write_flac_declaring(flac35, uint64_t{1} << 35);
  // A 16-bit WAV of 4000 frames whose data chunk declares 2^29 frames (2^30 bytes).
  data::write_audio(wav, sine(440.0, 16000.0, 4000), 1, 16000, data::SampleFormat::PCM_16);
  std::string b = file_bytes(wav);
  ASSERT_EQ(b.substr(36, 4), "data");
  for (int i = 0; i < 4; ++i) b[40 + i] = static_cast<char>((uint32_t{1} << 30) >> (8 * i));
  put_file(wav, b);

  const data::AudioLimits no_duration_limit{.max_seconds = 1e12};
  const int64_t growth = test::peak_memory_growth([&] {
    // The default hour refuses the declared duration (2^29 frames at 16 kHz are 9.3 hours) ...
    expect_error_naming(flac29, "its header declares 536870912 frames at 16000 Hz");
    expect_error_naming(flac35, "its header declares 34359738368 frames");
    // ... and without it, only the 4000 frames there are are read before the file is found short.
    for (const fs::path& flac : {flac29, flac35}) {
      const std::string m = error_of([&] { data::read_audio(flac, no_duration_limit); });
      EXPECT_NE(m.find(flac.string()), std::string::npos) << m;
      EXPECT_NE(m.find("truncated or corrupt: read 4000 of "), std::string::npos) << m;
    }
    expect_error_naming(wav,
                        "truncated: its header declares 1073741824 bytes of audio but the file holds 8000");
    EXPECT_THROW(data::read_audio(wav, no_duration_limit), Error);
  });
  EXPECT_LT(growth, 64 * kMiB);
  // The untouched FLAC reads whole (the blocks add up).
  write_flac_declaring(dir / "ok.flac", 4000);
  EXPECT_LE(max_abs_diff(data::read_audio(dir / "ok.flac").samples, sine(440.0, 16000.0, 4000)), 1.0 / 32768);
}

}  // namespace
}  // namespace cw
