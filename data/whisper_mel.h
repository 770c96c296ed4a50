// Whisper's log-mel front end (Radford et al. 2022; openai-whisper's audio.py): 16 kHz samples ->
// STFT (n_fft 400, hop 160, periodic Hann window, centered with reflect padding, the last frame
// dropped) -> power spectrum -> Slaney-style mel filters (librosa's, norm="slaney", 80 or 128
// bins, 0-8 kHz) -> log10(max(x, 1e-10)) -> max(x, max(x) - 8) -> (x + 4) / 4.
// The speech tower's front end when --model.speech_tower whisper. Part of data/.
//
// Reference: whisper/audio.py (openai-whisper 20250625) pad_or_trim + log_mel_spectrogram. Held
// within 1e-4 to transformers' WhisperFeatureExtractor on real speech (fixture by
// tools/make_whisper_mel_fixture.py, which checks that reference against audio.py's formula);
// measured: 1.2e-7 unpadded, 6.7e-8 padded to 30 s, i.e. f32 output rounding. Computed in f64;
// the filters are built here, not read from Whisper's float32 mel_filters.npz: they differ from
// it by that table's float32 rounding only (at most 1.3e-9 for 80 bins, 2.3e-9 for 128).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/tensor.h"
#include "data/audio_io.h"

namespace cw::data {

struct WhisperMelOptions {
  int64_t n_mels = 80;      // 80 (tiny ... large-v2) or 128 (large-v3)
  bool pad_to_30s = false;  // pad (or cut) the audio to 480,000 samples first: 3000 frames,
                            // as Whisper's transcription does; off: the utterance's own frames
};

// Computes the features. Construction builds the window, the mel filters and the FFT plan;
// compute() is const and thread-safe.
class WhisperMel {
 public:
  explicit WhisperMel(WhisperMelOptions options = {});

  // Mono samples at 16 kHz -> f32 (frames, n_mels), frames = n / 160 (floor), or 3000 when
  // pad_to_30s. Fewer than 1 frame's worth of samples (n < 160, empty included, padded or not)
  // is a ValueError naming the count; so is n <= 200 unpadded, too short for the centred
  // STFT's reflect padding of 200 samples (torch.stft refuses it too).
  Tensor compute(std::span<const float> samples) const;
  // The same for Audio, whose rate must be 16 kHz (else ValueError: resample first, load_audio).
  Tensor compute(const Audio& audio) const;

  // n / 160 (0 below one frame), or 3000 when pad_to_30s; what compute() returns when it accepts n.
  int64_t num_frames(int64_t num_samples) const;
  // The mel filters as f64 (n_mels, 201), as librosa.filters.mel(sr=16000, n_fft=400, n_mels).
  Tensor mel_filters() const;
  const WhisperMelOptions& options() const { return options_; }
  // A text naming every setting and the implementation's version (the feature cache's key).
  std::string key() const;

 private:
  WhisperMelOptions options_;
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace cw::data
