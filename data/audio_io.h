// Audio in and out for the speech tower: reading WAV (and whatever else libsndfile reads) to
// mono float samples, writing test files, and resampling to the model's 16 kHz with libsoxr.
// First stage of the audio front end (then audio_fbank.h, audio_normalize.h). Part of data/.
//
// Why these libraries: libsndfile is the reference reader of PCM/float WAV (every bit depth,
// WAVE_FORMAT_EXTENSIBLE, odd chunks) and scales integers the way torchaudio/soundfile do
// (x / 2^(bits-1)). libsoxr is the resampler of SoX and FFmpeg: linear phase, a flat passband
// and a stopband far below 16-bit noise, in one call; libsamplerate's best sinc converter is of
// similar quality but much slower. torchaudio's own resample (a 6-zero-crossing windowed sinc)
// is shorter, with a wider transition band and a leakier stopband: after a 16 -> 8 -> 16 kHz round trip of
// real speech, soxr leaves the features below 3.4 kHz as they were (mean change 3e-5) and torchaudio does not
// (0.02); see ResamplerRoundTripVsTorchaudio in tests/data/audio_fbank_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace cw::data {

// Mono audio: samples in [-1, 1] (float files may exceed it) at sample_rate Hz.
struct Audio {
  std::vector<float> samples;
  int64_t sample_rate = 0;
};

// What read_audio accepts of a file's header, checked before anything is allocated: a sound file
// is untrusted input, and its header alone decides how much memory the samples take. Callers
// that read long recordings raise the limits (the train binary's --data.max_audio_seconds etc.).
struct AudioLimits {
  // Real recordings run from 8 kHz (telephony) to 384 kHz (studio converters); 4 kHz leaves room
  // for old 5.5 and 6 kHz files. Anything outside is a corrupt header, and a harmful one: 1 Hz
  // resampled to 16 kHz multiplies the samples by 16,000.
  int64_t min_rate = 4'000;
  int64_t max_rate = 384'000;
  // An hour: far above any utterance of a speech corpus (LibriSpeech's longest is 35 s), and at
  // most 4 bytes x max_rate x max_seconds of mono samples (230 MB at 16 kHz, 5.5 GB at 384 kHz).
  double max_seconds = 3600.0;
};

// Reads a sound file and downmixes it to mono by averaging the channels (what
// torchaudio.load(...).mean(0) gives). Integer PCM is scaled by 1 / 2^(bits-1) (8-bit WAV,
// which is unsigned, by (x - 128) / 128), float is kept as stored. Throws cw::Error naming the
// file when it cannot be opened, is not audio, is truncated (the header promises more data than
// the file holds), holds no samples, or declares a sample rate or a duration outside `limits`.
// Memory follows the samples actually read, never the count a header declares.
Audio read_audio(const std::filesystem::path& path, const AudioLimits& limits = {});

// Sample formats write_audio can produce (all WAV).
enum class SampleFormat { PCM_U8, PCM_16, PCM_24, PCM_32, Float32 };

// Writes interleaved samples (frames * channels values in [-1, 1]) as a WAV file; used by the
// tests to make files of every format, and to hand resampled audio to other tools. Throws
// cw::Error naming the file on failure.
void write_audio(const std::filesystem::path& path, std::span<const float> interleaved, int channels,
                 int64_t sample_rate, SampleFormat format);

// Resamples mono samples from in_rate to out_rate Hz with libsoxr's "high quality" recipe
// (SOXR_HQ: 20-bit precision, linear phase, passband flat (0.01 dB) to 91% of the lower Nyquist
// frequency: 7.3 kHz when going to 16 kHz, -3 dB near 7.6 kHz, so the top mel bins of audio
// resampled down from higher rates are slightly attenuated).
// The output has round(n * out_rate / in_rate) samples, 0 included (one sample at 44.1 kHz is
// none at 16 kHz), and is time-aligned with the input (the filter delay is compensated). Equal
// rates return a copy.
std::vector<float> resample(std::span<const float> samples, int64_t in_rate, int64_t out_rate);

// read_audio, then resample to target_rate (16 kHz for the speech tower).
Audio load_audio(const std::filesystem::path& path, int64_t target_rate = 16000,
                 const AudioLimits& limits = {});

}  // namespace cw::data
