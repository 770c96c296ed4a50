// Whisper's log-mel front end (data/whisper_mel.h), step for step as openai-whisper's
// whisper/audio.py log_mel_spectrogram computes it, in double precision with FFTW for the FFT,
// with the mel filters built here as librosa.filters.mel builds them (librosa/filters.py, 0.10).
//
// Why compute the filters rather than ship Whisper's assets/mel_filters.npz: they are a closed
// formula (Slaney's mel scale and area normalization), and building them in f64 leaves out the
// float32 rounding of the shipped table (librosa's default dtype). The test holds our filters
// to that table (tests/data/whisper_mel_test.cpp) and the features to the reference within 1e-4.
#include "data/whisper_mel.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <numbers>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/ops.h"
#include "data/audio_fbank.h"

namespace cw::data {
namespace {

// Whisper's fixed settings (whisper/audio.py: SAMPLE_RATE, N_FFT, HOP_LENGTH, N_SAMPLES).
constexpr int64_t kSampleRate = 16000;
constexpr int64_t kNFft = 400;                     // 25 ms window
constexpr int64_t kHop = 160;                      // 10 ms shift
constexpr int64_t kNumBins = kNFft / 2 + 1;        // 201 rfft bins, 0 ... 8 kHz in 40 Hz steps
constexpr int64_t kPadSamples = 30 * kSampleRate;  // pad_or_trim's N_SAMPLES: 3000 frames
constexpr int64_t kCenterPad = kNFft / 2;          // torch.stft(center=True) pads 200 each side
constexpr const char* kVersion = "whisper-mel-1";

// FFTW's planner and plan destruction run under the lock Fbank's do (audio_fbank.h).

struct FftwFree {
  void operator()(void* p) const { fftw_free(p); }
};
using DoubleBuffer = std::unique_ptr<double, FftwFree>;
using ComplexBuffer = std::unique_ptr<fftw_complex, FftwFree>;

// Slaney's mel scale (Auditory Toolbox; librosa.hz_to_mel / mel_to_hz with htk=False): linear,
// 3 mels per 200 Hz, below 1 kHz; logarithmic above, 27 mels per factor 6.4 in frequency.
constexpr double kMelFSp = 200.0 / 3.0;
constexpr double kMinLogHz = 1000.0;
constexpr double kMinLogMel = kMinLogHz / kMelFSp;  // 15
const double kLogStep = std::log(6.4) / 27.0;

double hz_to_mel(double hz) {
  return hz >= kMinLogHz ? kMinLogMel + std::log(hz / kMinLogHz) / kLogStep : hz / kMelFSp;
}
double mel_to_hz(double mel) {
  return mel >= kMinLogMel ? kMinLogHz * std::exp(kLogStep * (mel - kMinLogMel)) : kMelFSp * mel;
}

// librosa.filters.mel(sr=16000, n_fft=400, n_mels, fmin=0, fmax=8000, htk=False,
// norm="slaney") as a dense row-major (n_mels, 201) matrix, in f64.
std::vector<double> slaney_mel_filters(int64_t n_mels) {
  // mel_frequencies: n_mels + 2 points evenly spaced in mel (np.linspace: start + i * step,
  // the last point set to stop exactly), back in Hz.
  const double mel_min = hz_to_mel(0.0), mel_max = hz_to_mel(static_cast<double>(kSampleRate) / 2.0);
  const int64_t n_points = n_mels + 2;
  const double step = (mel_max - mel_min) / static_cast<double>(n_points - 1);
  std::vector<double> mel_f(static_cast<size_t>(n_points));
  for (int64_t i = 0; i < n_points; ++i)
    mel_f[static_cast<size_t>(i)] =
        mel_to_hz(i == n_points - 1 ? mel_max : mel_min + static_cast<double>(i) * step);
  // fft_frequencies (np.fft.rfftfreq(n_fft, 1 / sr)): k * sr / n_fft = 40 k Hz.
  std::vector<double> fftfreqs(static_cast<size_t>(kNumBins));
  for (int64_t k = 0; k < kNumBins; ++k)
    fftfreqs[static_cast<size_t>(k)] =
        static_cast<double>(k) * (static_cast<double>(kSampleRate) / static_cast<double>(kNFft));

  std::vector<double> weights(static_cast<size_t>(n_mels * kNumBins), 0.0);
  for (int64_t i = 0; i < n_mels; ++i) {
    const double f0 = mel_f[static_cast<size_t>(i)], f1 = mel_f[static_cast<size_t>(i + 1)],
                 f2 = mel_f[static_cast<size_t>(i + 2)];
    // Triangle through (f0, 0), (f1, 1), (f2, 0): librosa's lower = -ramps[i] / fdiff[i] and
    // upper = ramps[i + 2] / fdiff[i + 1], ramps = mel_f - fftfreqs; then Slaney's
    // normalization 2 / (f2 - f0), so that every filter has unit area in Hz.
    const double enorm = 2.0 / (f2 - f0);
    for (int64_t k = 0; k < kNumBins; ++k) {
      const double f = fftfreqs[static_cast<size_t>(k)];
      const double lower = -(f0 - f) / (f1 - f0), upper = (f2 - f) / (f2 - f1);
      weights[static_cast<size_t>(i * kNumBins + k)] = std::max(0.0, std::min(lower, upper)) * enorm;
    }
  }
  return weights;
}

}  // namespace

struct WhisperMel::Impl {
  std::vector<double> window;   // periodic Hann (torch.hann_window(400)): 0.5 - 0.5 cos(2 pi n / 400)
  std::vector<double> filters;  // (n_mels, 201), row-major
  // Nonzero columns [begin, end) of each filter row, so that a frame costs ~2 x 201 products
  // rather than n_mels x 201.
  std::vector<int64_t> begin, end;
  fftw_plan plan = nullptr;

  explicit Impl(int64_t n_mels) {
    window.resize(static_cast<size_t>(kNFft));
    for (int64_t n = 0; n < kNFft; ++n)
      window[static_cast<size_t>(n)] =
          0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(n) / static_cast<double>(kNFft));
    filters = slaney_mel_filters(n_mels);
    begin.assign(static_cast<size_t>(n_mels), 0);
    end.assign(static_cast<size_t>(n_mels), 0);
    for (int64_t m = 0; m < n_mels; ++m) {
      const double* row = filters.data() + m * kNumBins;
      int64_t b = 0, e = kNumBins;
      while (b < kNumBins && row[b] == 0.0) ++b;
      while (e > b && row[e - 1] == 0.0) --e;
      begin[static_cast<size_t>(m)] = b;
      end[static_cast<size_t>(m)] = e;
    }
    // FFTW_ESTIMATE: no timing runs, so plans (and results) do not depend on machine load.
    // Planning on fftw_malloc'd arrays lets compute() run the plan on its own, equally aligned,
    // fftw_malloc'd arrays (fftw_execute_dft_r2c is thread-safe).
    DoubleBuffer in(static_cast<double*>(fftw_malloc(sizeof(double) * static_cast<size_t>(kNFft))));
    ComplexBuffer out(
        static_cast<fftw_complex*>(fftw_malloc(sizeof(fftw_complex) * static_cast<size_t>(kNumBins))));
    CW_CHECK(in && out, Error, "WhisperMel: out of memory for FFT buffers of ", kNFft, " points");
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    plan = fftw_plan_dft_r2c_1d(static_cast<int>(kNFft), in.get(), out.get(), FFTW_ESTIMATE);
    CW_CHECK(plan, Error, "WhisperMel: FFTW could not plan a real FFT of ", kNFft, " points");
  }
  ~Impl() {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    fftw_destroy_plan(plan);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

WhisperMel::WhisperMel(WhisperMelOptions options) : options_(options) {
  CW_CHECK(options_.n_mels > 0 && options_.n_mels <= kNumBins, ValueError,
           "WhisperMel: n_mels must be in [1, ", kNumBins, "] (Whisper uses 80 or 128), got ",
           options_.n_mels);
  impl_ = std::make_shared<const Impl>(options_.n_mels);
}

int64_t WhisperMel::num_frames(int64_t num_samples) const {
  // torch.stft(center=True) gives 1 + n / hop frames; audio.py drops the last ([..., :-1]).
  if (options_.pad_to_30s) return kPadSamples / kHop;
  return num_samples < 0 ? 0 : num_samples / kHop;
}

Tensor WhisperMel::mel_filters() const {
  Tensor m = Tensor::empty({options_.n_mels, kNumBins}, DType::F64);
  std::copy(impl_->filters.begin(), impl_->filters.end(), m.data<double>());
  return m;
}

std::string WhisperMel::key() const {
  std::ostringstream key;
  key << kVersion << " sample_rate=" << kSampleRate << " n_fft=" << kNFft << " hop_length=" << kHop
      << " window=hann_periodic center=reflect drop_last_frame=1 power=2 n_mels=" << options_.n_mels
      << " fmin=0 fmax=" << kSampleRate / 2 << " mel_scale=slaney norm=slaney log10_floor=1e-10"
      << " dynamic_range=8 scale=(x+4)/4 pad_to_30s=" << (options_.pad_to_30s ? 1 : 0);
  return key.str();
}

Tensor WhisperMel::compute(std::span<const float> samples) const {
  const int64_t n = static_cast<int64_t>(samples.size());
  CW_CHECK(n >= kHop, ValueError, "WhisperMel::compute: ", n, " samples is less than one frame (", kHop,
           " samples, 10 ms at 16 kHz)");
  // pad_or_trim (audio.py): cut to, or pad with zeros up to, 30 s.
  const int64_t len = options_.pad_to_30s ? kPadSamples : n;
  const int64_t copied = std::min(n, len);
  // torch.stft's reflect padding mirrors kCenterPad samples about each end, without repeating
  // the end sample, so it needs more than that many (torch raises otherwise).
  CW_CHECK(len > kCenterPad, ValueError, "WhisperMel::compute: ", n, " samples is too short for the ",
           "centred STFT's reflect padding (needs more than ", kCenterPad,
           "; pad the audio or use pad_to_30s)");

  // The padded signal x[-200 .. len + 200): x[-i] = x[i], x[len - 1 + i] = x[len - 1 - i].
  std::vector<double> x(static_cast<size_t>(len + 2 * kCenterPad), 0.0);
  double* mid = x.data() + kCenterPad;
  for (int64_t i = 0; i < copied; ++i) mid[i] = static_cast<double>(samples[static_cast<size_t>(i)]);
  for (int64_t i = 1; i <= kCenterPad; ++i) {
    mid[-i] = mid[i];
    mid[len - 1 + i] = mid[len - 1 - i];
  }

  const int64_t frames = num_frames(n), n_mels = options_.n_mels;
  DoubleBuffer in(static_cast<double*>(fftw_malloc(sizeof(double) * static_cast<size_t>(kNFft))));
  ComplexBuffer spec(
      static_cast<fftw_complex*>(fftw_malloc(sizeof(fftw_complex) * static_cast<size_t>(kNumBins))));
  CW_CHECK(in && spec, Error, "WhisperMel::compute: out of memory for FFT buffers");
  std::vector<double> power(static_cast<size_t>(kNumBins));
  std::vector<double> log_spec(static_cast<size_t>(frames * n_mels));
  const Impl& p = *impl_;
  double log_max = -std::numeric_limits<double>::infinity();
  for (int64_t t = 0; t < frames; ++t) {
    const double* frame = x.data() + t * kHop;
    for (int64_t i = 0; i < kNFft; ++i) in.get()[i] = frame[i] * p.window[static_cast<size_t>(i)];
    fftw_execute_dft_r2c(p.plan, in.get(), spec.get());
    for (int64_t k = 0; k < kNumBins; ++k) {
      const double re = spec.get()[k][0], im = spec.get()[k][1];
      power[static_cast<size_t>(k)] = re * re + im * im;  // stft.abs() ** 2
    }
    for (int64_t m = 0; m < n_mels; ++m) {
      const double* row = p.filters.data() + m * kNumBins;
      double mel = 0.0;
      for (int64_t k = p.begin[static_cast<size_t>(m)]; k < p.end[static_cast<size_t>(m)]; ++k)
        mel += row[k] * power[static_cast<size_t>(k)];
      const double v = std::log10(std::max(mel, 1e-10));
      log_spec[static_cast<size_t>(t * n_mels + m)] = v;
      log_max = std::max(log_max, v);
    }
  }

  // Dynamic range of 8 (80 dB) below the utterance's loudest bin, then to roughly [-1, 1].
  Tensor out = Tensor::empty({frames, n_mels}, DType::F32);
  float* y = out.data<float>();
  for (size_t i = 0; i < log_spec.size(); ++i)
    y[i] = static_cast<float>((std::max(log_spec[i], log_max - 8.0) + 4.0) / 4.0);
  return out;
}

Tensor WhisperMel::compute(const Audio& audio) const {
  CW_CHECK(audio.sample_rate == kSampleRate, ValueError, "WhisperMel::compute: audio at ", audio.sample_rate,
           " Hz but Whisper's front end takes ", kSampleRate, " Hz (resample first, see load_audio)");
  return compute(std::span<const float>(audio.samples));
}

}  // namespace cw::data
