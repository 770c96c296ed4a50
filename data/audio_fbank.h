// Log-mel filterbank features (Kaldi's compute-fbank-feats, as torchaudio.compliance.kaldi.fbank
// reimplements it) and the padding of variable-length feature sequences into a batch. Second
// stage of the audio front end, after audio_io.h (16 kHz mono samples). Part of data/.
//
// Reference: torchaudio.compliance.kaldi.fbank (torchaudio 0.13.1), called as
//   fbank(waveform * 32768, num_mel_bins=80, frame_length=25.0, frame_shift=10.0, dither=0.0,
//         window_type='hanning', preemphasis_coefficient=0.97, remove_dc_offset=True,
//         low_freq=20.0, high_freq=0.0, sample_frequency=16000.0, snip_edges=True,
//         round_to_power_of_two=True, use_power=True, use_log_fbank=True, use_energy=False)
// on a float64 waveform. On 2 s of real speech (tests/data/audio_fbank_test.cpp, fixture by
// tools/make_audio_fixture.py) the largest difference is 2.4e-4, all of it from torchaudio
// building its mel filters in float32; with torch's default dtype float64 the two agree exactly
// (after rounding to f32). Against torchaudio run in float32: 5e-4.
// Why Kaldi-style fbank rather than torchaudio.transforms.MelSpectrogram: it is the front end of
// the open Conformer recipes (WeNet, ESPnet, icefall/lhotse), so their settings and CMVN tooling
// carry over; and Kaldi defines it exactly (whole frames only, per-frame DC removal,
// pre-emphasis, a float-epsilon floor), with no centering or padding choices left open. The 32768
// scale feeds Kaldi's int16 sample range, as WeNet does, so values equal Kaldi's own; Hann is
// the window of this front end (Kaldi's default "povey" is FbankWindow::Povey); dither is off so
// that features are deterministic.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "data/audio_io.h"

namespace cw::data {

// FFTW's planner and plan destruction touch global state (FFTW manual, "Thread safety"): every
// FFTW front end here (Fbank, WhisperMel) plans and destroys under this one lock.
std::mutex& fftw_planner_mutex();

// Kaldi's analysis windows (feature-window.cc); the symmetric forms, as Kaldi and torchaudio use.
enum class FbankWindow {
  Hann,         // 0.5 - 0.5 cos(2 pi n / (N - 1)); 'hanning'
  Povey,        // Hann^0.85, Kaldi's default
  Hamming,      // 0.54 - 0.46 cos(2 pi n / (N - 1))
  Rectangular,  // ones
};

// The options of kaldi.fbank that this implementation follows; defaults are the front end of
// the speech tower (see the call above), not Kaldi's own defaults (23 bins, Povey window).
struct FbankOptions {
  double sample_rate = 16000.0;
  double frame_length_ms = 25.0;  // window of 400 samples at 16 kHz
  double frame_shift_ms = 10.0;   // hop of 160 samples
  int64_t num_mel_bins = 80;
  double low_freq = 20.0;  // Hz, lower edge of the first triangle
  double high_freq = 0.0;  // Hz, upper edge of the last; <= 0 means Nyquist + high_freq
  double preemphasis = 0.97;
  bool remove_dc_offset = true;
  FbankWindow window = FbankWindow::Hann;
  bool round_to_power_of_two = true;  // FFT over 512 points for a 400-sample window
  bool use_power = true;              // power (|X|^2) rather than magnitude spectrum
  double input_scale = 32768.0;       // samples in [-1, 1] times this (Kaldi reads int16 values)
};

// Computes log-mel features. Construction builds the window, the mel filterbank and an FFTW
// plan (double precision, real to complex); compute() is const and thread-safe, so one Fbank
// can serve every loader thread. Copies share the plan.
class Fbank {
 public:
  explicit Fbank(FbankOptions options = {});

  // Features of mono samples at options().sample_rate: f32 (frames, num_mel_bins), frames =
  // 1 + (n - window) / shift (Kaldi's snip_edges=True: only whole windows), 0 when n < window.
  Tensor compute(std::span<const float> samples) const;
  // The same for an f32 1-d CPU tensor.
  Tensor compute(const Tensor& samples) const;
  // The same for Audio, whose sample rate must equal options().sample_rate (else ValueError:
  // resample first, see load_audio).
  Tensor compute(const Audio& audio) const;

  int64_t num_frames(int64_t num_samples) const;
  int64_t window_size() const { return window_size_; }
  int64_t window_shift() const { return window_shift_; }
  int64_t fft_size() const { return fft_size_; }
  // The triangular filters as a dense f64 (num_mel_bins, fft_size / 2 + 1) matrix, Nyquist
  // column zero, as kaldi.get_mel_banks pads it.
  Tensor mel_banks() const;
  const FbankOptions& options() const { return options_; }

 private:
  struct Plan;  // the FFTW plan and its buffers' layout (audio_fbank.cpp)
  // One triangle: weights of FFT bins [first, first + weights.size()).
  struct Filter {
    int64_t first = 0;
    std::vector<double> weights;
  };

  FbankOptions options_;
  int64_t window_size_ = 0, window_shift_ = 0, fft_size_ = 0;
  std::vector<double> window_;
  std::vector<Filter> filters_;
  std::shared_ptr<const Plan> plan_;
};

}  // namespace cw::data
