// Tests of data/whisper_mel.h: Whisper's log-mel features against transformers'
// WhisperFeatureExtractor on real speech (fixture by tools/make_whisper_mel_fixture.py, which
// checks that reference against whisper/audio.py's formula), unpadded and padded to 30 s; the
// mel filters against Whisper's shipped table; frame counts, trimming, bad input, the key and
// thread safety.
#include "data/whisper_mel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "support/check.h"

namespace cw {
namespace {

const std::string kFixture = std::string(CW_FIXTURE_DIR) + "/whisper_mel_reference.safetensors";

std::vector<float> samples_of(const SafetensorsFile& fixture, const std::string& name) {
  return fixture.load(name, DType::F32).to_vector<float>();
}

// Largest |a - b| of two (rows, cols) tensors and where, for the report.
struct Worst {
  double diff = 0.0;
  int64_t row = 0, col = 0;
};
Worst worst_diff(const Tensor& a, const Tensor& b) {
  const Tensor x = a.to(DType::F64), y = b.to(DType::F64);
  const std::vector<double> u = x.to_vector<double>(), v = y.to_vector<double>();
  Worst w;
  for (size_t i = 0; i < u.size(); ++i) {
    const double d = std::abs(u[i] - v[i]);
    if (d > w.diff) w = {d, static_cast<int64_t>(i) / a.size(1), static_cast<int64_t>(i) % a.size(1)};
  }
  return w;
}

// Holds ours to the reference within 1e-4 (the worst element and where in the message).
void expect_matches(const Tensor& ours, const Tensor& ref, const std::string& what) {
  ASSERT_EQ(ours.shape(), ref.shape()) << what;
  const Worst w = worst_diff(ours, ref);
  std::cout << "[ whisper mel ] " << what << ": max |diff| " << w.diff << " at frame " << w.row << ", bin "
            << w.col << "\n";
  EXPECT_LE(w.diff, 1e-4) << what << ": worst at frame " << w.row << ", bin " << w.col;
  EXPECT_TRUE(test::all_close(ours, ref, 1e-4, 0.0)) << what;
}

TEST(WhisperMel, MatchesReferenceOnRealSpeech) {
  const SafetensorsFile fixture = SafetensorsFile::open(kFixture);
  const data::WhisperMel mel80, mel128({.n_mels = 128});
  for (const char* clip : {"clip0", "clip1"}) {
    const std::vector<float> x = samples_of(fixture, std::string(clip) + "_samples");
    const Tensor ours = mel80.compute(x);
    EXPECT_EQ(ours.shape(), (Shape{static_cast<int64_t>(x.size()) / 160, 80}));
    expect_matches(ours, fixture.load(std::string(clip) + "_mel80", DType::F32),
                   std::string(clip) + " 80 bins");
  }
  expect_matches(mel128.compute(samples_of(fixture, "clip1_samples")),
                 fixture.load("clip1_mel128", DType::F32), "clip1 128 bins");
}

TEST(WhisperMel, MatchesReferencePaddedTo30s) {
  const SafetensorsFile fixture = SafetensorsFile::open(kFixture);
  const data::WhisperMel mel({.pad_to_30s = true});
  const Tensor all = mel.compute(samples_of(fixture, "clip0_samples"));
  ASSERT_EQ(all.shape(), (Shape{3000, 80}));
  // The fixture keeps a subset of the 3000 frames: the speech, the step into the padding, the end.
  const std::vector<int64_t> frames = fixture.load("clip0_padded_frames", DType::I64).to_vector<int64_t>();
  Tensor ours = Tensor::empty({static_cast<int64_t>(frames.size()), 80}, DType::F32);
  for (size_t i = 0; i < frames.size(); ++i)
    ours.select(0, static_cast<int64_t>(i)).copy_(all.select(0, frames[i]));
  expect_matches(ours, fixture.load("clip0_padded_mel80", DType::F32), "clip0 padded to 30 s, 80 bins");
}

TEST(WhisperMel, MelFiltersMatchWhispersTable) {
  const SafetensorsFile fixture = SafetensorsFile::open(kFixture);
  for (int64_t n : {80, 128}) {
    const Tensor ours = data::WhisperMel({.n_mels = n}).mel_filters();
    ASSERT_EQ(ours.dtype(), DType::F64);
    const Tensor table = fixture.load("mel_filters_" + std::to_string(n), DType::F64);  // float32 in the file
    ASSERT_EQ(ours.shape(), table.shape());
    // Whisper's table is librosa's f64 computation rounded to float32 (weights up to ~0.026):
    // what is left is that rounding, ~2e-9 at most.
    const Worst w = worst_diff(ours, table);
    std::cout << "[ whisper mel ] mel filters " << n << " vs mel_filters.npz: max |diff| " << w.diff
              << " at bin " << w.row << ", fft bin " << w.col << "\n";
    EXPECT_TRUE(test::all_close(ours, table, 1e-8, 1e-6)) << n << " bins";
  }
}

TEST(WhisperMel, FrameCountsAndTrimming) {
  const data::WhisperMel mel, padded({.pad_to_30s = true});
  for (int64_t n : {201, 320, 479, 480, 16000, 16159}) {
    EXPECT_EQ(mel.num_frames(n), n / 160) << n;
    EXPECT_EQ(mel.compute(std::vector<float>(static_cast<size_t>(n), 0.25f)).shape(), (Shape{n / 160, 80}))
        << n;
    EXPECT_EQ(padded.num_frames(n), 3000) << n;
  }
  EXPECT_EQ(padded.compute(std::vector<float>(160, 0.25f)).shape(), (Shape{3000, 80}));
  // Longer than 30 s: cut to the first 480,000 samples (pad_or_trim), so equal to those alone.
  std::vector<float> x(480000 + 16000);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(0.3 * std::sin(0.05 * static_cast<double>(i)));
  x.back() = 1.0f;  // a loud last sample that a missing cut would let through
  const Tensor cut = padded.compute(x);
  x.resize(480000);
  EXPECT_TRUE(test::all_close(cut, mel.compute(x), 0.0, 0.0));
  // Silence: every bin at the floor, log10(1e-10) = -10, so (-10 + 4) / 4.
  EXPECT_TRUE(test::all_close(mel.compute(std::vector<float>(1600, 0.0f)),
                              ops::full({10, 80}, -1.5, DType::F32), 0.0, 0.0));
}

TEST(WhisperMel, RejectsBadInput) {
  const data::WhisperMel mel, padded({.pad_to_30s = true});
  EXPECT_THROW(mel.compute(std::vector<float>{}), ValueError);
  EXPECT_THROW(padded.compute(std::vector<float>{}), ValueError);
  EXPECT_THROW(padded.compute(std::vector<float>(159, 0.1f)), ValueError);
  try {
    mel.compute(std::vector<float>(159, 0.1f));
    ADD_FAILURE() << "159 samples accepted";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("159 samples"), std::string::npos) << e.what();
  }
  // One frame's worth but too few for the STFT's reflect padding of 200 (torch.stft raises too).
  EXPECT_THROW(mel.compute(std::vector<float>(200, 0.1f)), ValueError);
  EXPECT_NO_THROW(mel.compute(std::vector<float>(201, 0.1f)));
  EXPECT_THROW(mel.compute(data::Audio{std::vector<float>(16000, 0.1f), 8000}), ValueError);
  EXPECT_EQ(mel.compute(data::Audio{std::vector<float>(16000, 0.1f), 16000}).shape(), (Shape{100, 80}));
  EXPECT_THROW(data::WhisperMel({.n_mels = 0}), ValueError);
  EXPECT_THROW(data::WhisperMel({.n_mels = 202}), ValueError);
}

TEST(WhisperMel, KeyNamesEverySetting) {
  const std::string key = data::WhisperMel().key();
  EXPECT_NE(key.find("whisper-mel-1"), std::string::npos) << key;
  EXPECT_NE(key.find("n_mels=80"), std::string::npos) << key;
  EXPECT_NE(key.find("pad_to_30s=0"), std::string::npos) << key;
  EXPECT_NE(key, data::WhisperMel({.n_mels = 128}).key());
  EXPECT_NE(key, data::WhisperMel({.pad_to_30s = true}).key());
  EXPECT_EQ(key, data::WhisperMel().key());
}

TEST(WhisperMel, ComputeIsThreadSafe) {
  const SafetensorsFile fixture = SafetensorsFile::open(kFixture);
  const std::vector<float> x = samples_of(fixture, "clip1_samples");
  const data::WhisperMel mel;
  const Tensor expected = mel.compute(x);
  std::vector<Tensor> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) threads.emplace_back([&, i] { results[i] = mel.compute(x); });
  for (auto& t : threads) t.join();
  for (const Tensor& r : results) EXPECT_TRUE(test::all_close(r, expected, 0.0, 0.0));
}

}  // namespace
}  // namespace cw
