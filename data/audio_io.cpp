// Sound file reading/writing (libsndfile) and resampling (libsoxr); see audio_io.h for the
// choices. Every failure names the file and carries libsndfile's or libsoxr's own reason.
#include "data/audio_io.h"

#include <sndfile.h>
#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <regex>
#include <string>

#include "core/error.h"

namespace cw::data {
namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

// libsndfile accepts a WAV whose data chunk is cut short and silently reads what is there; the
// only trace is its header log line "data : <declared> (should be <actual>)". A file that
// declares more audio than it holds was cut (a failed copy or download), and training on half
// an utterance against its full transcript is worse than an error. The streaming placeholder
// 0xFFFFFFFF (a writer that could not seek back) is not a truncation.
void check_not_truncated(SNDFILE* file, const std::filesystem::path& path) {
  char log[8192] = {};
  sf_command(file, SFC_GET_LOG_INFO, log, sizeof(log));
  static const std::regex data_line(R"(data\s*:\s*(\d+)\s*\(should be (\d+)\))");
  const std::string text(log);
  std::smatch sm;
  if (!std::regex_search(text, sm, data_line)) return;
  const unsigned long long declared = std::stoull(sm[1].str()), actual = std::stoull(sm[2].str());
  if (declared != 0xFFFFFFFFull && declared > actual)
    throw Error(detail::cat("read_audio: '", path.string(), "' is truncated: its header declares ", declared,
                            " bytes of audio but the file holds ", actual));
}

int sndfile_subtype(SampleFormat format) {
  switch (format) {
    case SampleFormat::PCM_U8: return SF_FORMAT_PCM_U8;
    case SampleFormat::PCM_16: return SF_FORMAT_PCM_16;
    case SampleFormat::PCM_24: return SF_FORMAT_PCM_24;
    case SampleFormat::PCM_32: return SF_FORMAT_PCM_32;
    case SampleFormat::Float32: return SF_FORMAT_FLOAT;
  }
  throw ValueError("write_audio: unknown sample format");
}

}  // namespace

Audio read_audio(const std::filesystem::path& path, const AudioLimits& limits) {
  const std::string name = path.string();
  std::error_code ec;
  CW_CHECK(std::filesystem::is_regular_file(path, ec), Error, "read_audio: '", name,
           "' is not a readable file");
  const auto file_bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  CW_CHECK(!ec && file_bytes > 0, Error, "read_audio: '", name, "' is empty (0 bytes)");

  SF_INFO info{};
  SndfilePtr file(sf_open(name.c_str(), SFM_READ, &info));
  // sf_strerror(nullptr) is the reason of the last failed sf_open ("Format not recognised.").
  CW_CHECK(file, Error, "read_audio: cannot read '", name, "' as audio: ", sf_strerror(nullptr));
  check_not_truncated(file.get(), path);
  CW_CHECK(info.frames > 0, Error, "read_audio: '", name, "' holds no audio samples (0 frames)");
  CW_CHECK(info.channels > 0, Error, "read_audio: '", name, "' has ", info.channels, " channels");
  CW_CHECK(info.samplerate >= limits.min_rate && info.samplerate <= limits.max_rate, Error, "read_audio: '",
           name, "': sample rate ", info.samplerate, " Hz is outside the accepted ", limits.min_rate, " to ",
           limits.max_rate, " Hz (AudioLimits; a corrupt header?)");
  const double seconds = static_cast<double>(info.frames) / info.samplerate;
  CW_CHECK(seconds <= limits.max_seconds, Error, "read_audio: '", name, "': its header declares ",
           info.frames, " frames at ", info.samplerate, " Hz (", seconds, " s), longer than the limit of ",
           limits.max_seconds, " s (AudioLimits::max_seconds)");

  // Read in blocks of about 2^20 samples, keeping only what arrives: a compressed file (FLAC)
  // can declare far more frames than it holds, and libsndfile only finds out while decoding. For
  // uncompressed formats libsndfile has already cut the declared count to the file's size, so
  // the output is reserved up front where the count is within one sample per byte of the file.
  const int64_t frames = info.frames, channels = info.channels;
  const int64_t block = std::max<int64_t>(1, (int64_t{1} << 20) / channels);
  std::vector<float> interleaved(static_cast<size_t>(block * channels));
  Audio audio;
  audio.sample_rate = info.samplerate;
  if (frames <= file_bytes / channels) audio.samples.reserve(static_cast<size_t>(frames));
  int64_t done = 0;
  while (done < frames) {
    // Normalized float reads (libsndfile's default): integers are divided by 2^(bits-1).
    const sf_count_t got = sf_readf_float(file.get(), interleaved.data(), std::min(block, frames - done));
    if (got <= 0) break;
    // Downmix by averaging (sum in double so that the mean of equal channels is exact).
    for (int64_t t = 0; t < got; ++t) {
      double sum = 0.0;
      for (int64_t c = 0; c < channels; ++c) sum += interleaved[static_cast<size_t>(t * channels + c)];
      audio.samples.push_back(static_cast<float>(sum / static_cast<double>(channels)));
    }
    done += got;
  }
  CW_CHECK(done == frames, Error, "read_audio: '", name, "' is truncated or corrupt: read ", done, " of ",
           frames, " frames (", sf_strerror(file.get()), ")");
  return audio;
}

void write_audio(const std::filesystem::path& path, std::span<const float> interleaved, int channels,
                 int64_t sample_rate, SampleFormat format) {
  const std::string name = path.string();
  CW_CHECK(channels > 0 && sample_rate > 0, ValueError, "write_audio: '", name, "': ", channels,
           " channels at ", sample_rate, " Hz");
  CW_CHECK(interleaved.size() % static_cast<size_t>(channels) == 0, ValueError, "write_audio: '", name,
           "': ", interleaved.size(), " samples is not a whole number of ", channels, "-channel frames");
  SF_INFO info{};
  info.samplerate = static_cast<int>(sample_rate);
  info.channels = channels;
  info.format = SF_FORMAT_WAV | sndfile_subtype(format);
  SndfilePtr file(sf_open(name.c_str(), SFM_WRITE, &info));
  CW_CHECK(file, Error, "write_audio: cannot write '", name, "': ", sf_strerror(nullptr));
  // Float data written to integer PCM is scaled by 2^(bits-1) and clipped (not wrapped).
  sf_command(file.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const sf_count_t frames = static_cast<sf_count_t>(interleaved.size()) / channels;
  const sf_count_t put = sf_writef_float(file.get(), interleaved.data(), frames);
  CW_CHECK(put == frames, Error, "write_audio: '", name, "': wrote ", put, " of ", frames,
           " frames: ", sf_strerror(file.get()));
}

std::vector<float> resample(std::span<const float> samples, int64_t in_rate, int64_t out_rate) {
  CW_CHECK(in_rate > 0 && out_rate > 0, ValueError, "resample: rates must be positive, got ", in_rate, " -> ",
           out_rate);
  if (in_rate == out_rate) return {samples.begin(), samples.end()};
  const size_t out_len = static_cast<size_t>(std::llround(
      static_cast<double>(samples.size()) * static_cast<double>(out_rate) / static_cast<double>(in_rate)));
  // libsoxr dereferences an empty (null) output buffer instead of producing nothing.
  if (out_len == 0) return {};
  std::vector<float> out(out_len);
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  size_t done = 0;
  // soxr_oneshot runs the whole signal through and flushes the filter tail, so the output is
  // aligned with the input and exactly out_len long.
  const soxr_error_t err =
      soxr_oneshot(static_cast<double>(in_rate), static_cast<double>(out_rate), 1, samples.data(),
                   samples.size(), nullptr, out.data(), out.size(), &done, &io, &quality, nullptr);
  CW_CHECK(!err, Error, "resample: libsoxr failed (", in_rate, " -> ", out_rate, " Hz): ", err);
  out.resize(done);
  return out;
}

Audio load_audio(const std::filesystem::path& path, int64_t target_rate, const AudioLimits& limits) {
  Audio audio = read_audio(path, limits);
  if (audio.sample_rate != target_rate) {
    audio.samples = resample(audio.samples, audio.sample_rate, target_rate);
    audio.sample_rate = target_rate;
  }
  return audio;
}

}  // namespace cw::data
