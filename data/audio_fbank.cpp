// Kaldi-style log-mel filterbank (kaldi/src/feat/feature-fbank.cc, mel-computations.cc,
// feature-window.cc), step for step as torchaudio.compliance.kaldi.fbank computes it, in double
// precision with FFTW for the FFT; and the padding of feature sequences into a batch.
//
// Why FFTW: the most used and tested FFT library (Debian's libfftw3-dev), exact for any size
// and fast for ours; planning is not thread-safe, so it happens once, under a lock, and compute()
// only executes the plan on its own buffers (fftw_execute_dft_r2c is thread-safe). pocketfft
// (what torch.fft uses) is header-only but not packaged in Debian 12, and we do not vendor.
#include "data/audio_fbank.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numbers>

#include "core/error.h"
#include "core/ops.h"

namespace cw::data {

// FFTW's planner and plan destruction touch global state (FFTW manual, "Thread safety").
std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

namespace {

struct FftwFree {
  void operator()(void* p) const { fftw_free(p); }
};
using DoubleBuffer = std::unique_ptr<double, FftwFree>;
using ComplexBuffer = std::unique_ptr<fftw_complex, FftwFree>;

// Kaldi's mel scale (mel-computations.h): 1127 ln(1 + f / 700).
double mel_scale(double hz) { return 1127.0 * std::log(1.0 + hz / 700.0); }

}  // namespace

struct Fbank::Plan {
  fftw_plan plan = nullptr;
  explicit Plan(int64_t n) {
    // FFTW_ESTIMATE: no timing runs, so plans (and results) do not depend on machine load.
    // Planning with fftw_malloc'd arrays lets compute() run the plan on other fftw_malloc'd
    // (equally aligned) arrays.
    DoubleBuffer in(static_cast<double*>(fftw_malloc(sizeof(double) * static_cast<size_t>(n))));
    ComplexBuffer out(
        static_cast<fftw_complex*>(fftw_malloc(sizeof(fftw_complex) * static_cast<size_t>(n / 2 + 1))));
    CW_CHECK(in && out, Error, "Fbank: out of memory for FFT buffers of ", n, " points");
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    plan = fftw_plan_dft_r2c_1d(static_cast<int>(n), in.get(), out.get(), FFTW_ESTIMATE);
    CW_CHECK(plan, Error, "Fbank: FFTW could not plan a real FFT of ", n, " points");
  }
  ~Plan() {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    fftw_destroy_plan(plan);
  }
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
};

Fbank::Fbank(FbankOptions options) : options_(options) {
  const FbankOptions& o = options_;
  CW_CHECK(o.sample_rate > 0, ValueError, "Fbank: sample_rate must be positive, got ", o.sample_rate);
  // Kaldi truncates frame sizes to whole samples (FrameExtractionOptions::WindowSize/Shift).
  window_size_ = static_cast<int64_t>(o.sample_rate * o.frame_length_ms * 0.001);
  window_shift_ = static_cast<int64_t>(o.sample_rate * o.frame_shift_ms * 0.001);
  CW_CHECK(window_size_ >= 2 && window_shift_ >= 1, ValueError, "Fbank: frame_length_ms ", o.frame_length_ms,
           " and frame_shift_ms ", o.frame_shift_ms, " give a window of ", window_size_, " and a shift of ",
           window_shift_, " samples");
  fft_size_ = window_size_;
  if (o.round_to_power_of_two)
    while (fft_size_ & (fft_size_ - 1)) fft_size_ += fft_size_ & -fft_size_;  // next power of 2
  CW_CHECK(fft_size_ % 2 == 0, ValueError, "Fbank: the FFT size ", fft_size_,
           " must be even (use round_to_power_of_two or change frame_length_ms)");
  CW_CHECK(o.preemphasis >= 0.0 && o.preemphasis <= 1.0, ValueError,
           "Fbank: preemphasis must be in [0, 1], got ", o.preemphasis);

  // Window (feature-window.cc, FeatureWindowFunction): symmetric, a = 2 pi / (N - 1).
  window_.resize(static_cast<size_t>(window_size_));
  const double a = 2.0 * std::numbers::pi / static_cast<double>(window_size_ - 1);
  for (int64_t i = 0; i < window_size_; ++i) {
    const double hann = 0.5 - 0.5 * std::cos(a * static_cast<double>(i));
    double w = 1.0;
    switch (o.window) {
      case FbankWindow::Hann: w = hann; break;
      case FbankWindow::Povey: w = std::pow(hann, 0.85); break;
      case FbankWindow::Hamming: w = 0.54 - 0.46 * std::cos(a * static_cast<double>(i)); break;
      case FbankWindow::Rectangular: w = 1.0; break;
    }
    window_[static_cast<size_t>(i)] = w;
  }

  // Mel filterbank (mel-computations.cc, MelBanks::MelBanks; kaldi.get_mel_banks): num_bins
  // triangles evenly spaced in mel between low_freq and high_freq, each spanning two spacings,
  // evaluated at the mel value of FFT bin centres k * sample_rate / fft_size, k < fft_size / 2.
  const double nyquist = 0.5 * o.sample_rate;
  const double high = o.high_freq <= 0.0 ? nyquist + o.high_freq : o.high_freq;
  CW_CHECK(o.num_mel_bins > 3, ValueError, "Fbank: need more than 3 mel bins, got ", o.num_mel_bins);
  CW_CHECK(o.low_freq >= 0.0 && o.low_freq < nyquist && high > 0.0 && high <= nyquist && o.low_freq < high,
           ValueError, "Fbank: low_freq ", o.low_freq, " and high_freq ", high,
           " must satisfy 0 <= low < high <= ", nyquist, " (Nyquist)");
  const double mel_low = mel_scale(o.low_freq), mel_high = mel_scale(high);
  const double delta = (mel_high - mel_low) / static_cast<double>(o.num_mel_bins + 1);
  const double bin_width = o.sample_rate / static_cast<double>(fft_size_);
  const int64_t num_fft_bins = fft_size_ / 2;
  filters_.resize(static_cast<size_t>(o.num_mel_bins));
  for (int64_t b = 0; b < o.num_mel_bins; ++b) {
    const double left = mel_low + static_cast<double>(b) * delta, center = left + delta,
                 right = center + delta;
    Filter& f = filters_[static_cast<size_t>(b)];
    f.first = -1;
    for (int64_t k = 0; k < num_fft_bins; ++k) {
      const double mel = mel_scale(bin_width * static_cast<double>(k));
      const double weight =
          std::max(0.0, std::min((mel - left) / (center - left), (right - mel) / (right - center)));
      if (weight <= 0.0) continue;
      if (f.first < 0) f.first = k;
      f.weights.resize(static_cast<size_t>(k - f.first + 1), 0.0);
      f.weights.back() = weight;
    }
    if (f.first < 0) f.first = 0;  // an empty triangle (too many bins for the FFT size)
  }

  plan_ = std::make_shared<const Plan>(fft_size_);
}

int64_t Fbank::num_frames(int64_t num_samples) const {
  if (num_samples < window_size_) return 0;
  return 1 + (num_samples - window_size_) / window_shift_;
}

Tensor Fbank::mel_banks() const {
  const int64_t bins = fft_size_ / 2 + 1;
  Tensor m = ops::zeros({options_.num_mel_bins, bins}, DType::F64);
  double* p = m.data<double>();
  for (int64_t b = 0; b < options_.num_mel_bins; ++b) {
    const Filter& f = filters_[static_cast<size_t>(b)];
    for (size_t j = 0; j < f.weights.size(); ++j)
      p[b * bins + f.first + static_cast<int64_t>(j)] = f.weights[j];
  }
  return m;
}

Tensor Fbank::compute(std::span<const float> samples) const {
  const int64_t frames = num_frames(static_cast<int64_t>(samples.size()));
  const int64_t num_bins = options_.num_mel_bins, half = fft_size_ / 2 + 1;
  Tensor out = Tensor::empty({frames, num_bins}, DType::F32);
  if (frames == 0) return out;
  float* y = out.data<float>();

  DoubleBuffer in(static_cast<double*>(fftw_malloc(sizeof(double) * static_cast<size_t>(fft_size_))));
  ComplexBuffer spec(
      static_cast<fftw_complex*>(fftw_malloc(sizeof(fftw_complex) * static_cast<size_t>(half))));
  CW_CHECK(in && spec, Error, "Fbank: out of memory for FFT buffers");
  std::vector<double> power(static_cast<size_t>(half));
  double* x = in.get();
  const double scale = options_.input_scale, coeff = options_.preemphasis;
  // Kaldi floors mel energies at FLT_EPSILON before the log, whatever the precision
  // (kaldi.fbank: torch.max(mel_energies, EPSILON).log()).
  const double floor = static_cast<double>(std::numeric_limits<float>::epsilon());

  for (int64_t t = 0; t < frames; ++t) {
    const float* frame = samples.data() + t * window_shift_;
    for (int64_t i = 0; i < window_size_; ++i) x[i] = scale * static_cast<double>(frame[i]);
    // ProcessWindow (feature-window.cc): DC removal, pre-emphasis, window, in this order.
    if (options_.remove_dc_offset) {
      double mean = 0.0;
      for (int64_t i = 0; i < window_size_; ++i) mean += x[i];
      mean /= static_cast<double>(window_size_);
      for (int64_t i = 0; i < window_size_; ++i) x[i] -= mean;
    }
    if (coeff != 0.0) {  // x[i] -= coeff * x[i - 1], with x[-1] taken as x[0]
      for (int64_t i = window_size_ - 1; i > 0; --i) x[i] -= coeff * x[i - 1];
      x[0] -= coeff * x[0];
    }
    for (int64_t i = 0; i < window_size_; ++i) x[i] *= window_[static_cast<size_t>(i)];
    std::fill(x + window_size_, x + fft_size_, 0.0);

    fftw_execute_dft_r2c(plan_->plan, x, spec.get());
    for (int64_t k = 0; k < half; ++k) {
      const double re = spec.get()[k][0], im = spec.get()[k][1], p = re * re + im * im;
      power[static_cast<size_t>(k)] = options_.use_power ? p : std::sqrt(p);
    }
    for (int64_t b = 0; b < num_bins; ++b) {
      const Filter& f = filters_[static_cast<size_t>(b)];
      double energy = 0.0;
      for (size_t j = 0; j < f.weights.size(); ++j)
        energy += f.weights[j] * power[static_cast<size_t>(f.first) + j];
      y[t * num_bins + b] = static_cast<float>(std::log(std::max(energy, floor)));
    }
  }
  return out;
}

Tensor Fbank::compute(const Tensor& samples) const {
  CW_CHECK(samples.dim() == 1 && samples.dtype() == DType::F32 && samples.device() == Device::cpu(),
           ShapeError, "Fbank::compute: expected f32 (n) samples on cpu, got ", describe(samples));
  const Tensor c = samples.contiguous();
  return compute(std::span<const float>(c.data<float>(), static_cast<size_t>(c.numel())));
}

Tensor Fbank::compute(const Audio& audio) const {
  CW_CHECK(static_cast<double>(audio.sample_rate) == options_.sample_rate, ValueError,
           "Fbank::compute: audio at ", audio.sample_rate, " Hz but the filterbank is for ",
           options_.sample_rate, " Hz (resample first)");
  return compute(std::span<const float>(audio.samples));
}

}  // namespace cw::data
