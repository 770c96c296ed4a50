// Sound file reading/writing (libsndfile) and resampling (libsoxr); see audio_io.h for the
// choices. Every failure names the file and carries libsndfile's or libsoxr's own reason.
#include "data/audio_io.h"

#include <sndfile.h>
#include <soxr.h>

#include <cmath>
#include <memory>
#include <regex>
#include <string>

#include "core/error.h"

namespace cw {
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

Audio read_audio(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  CW_CHECK(std::filesystem::is_regular_file(path, ec), Error, "read_audio: '", name,
           "' is not a readable file");
  CW_CHECK(std::filesystem::file_size(path, ec) > 0, Error, "read_audio: '", name, "' is empty (0 bytes)");

  SF_INFO info{};
  SndfilePtr file(sf_open(name.c_str(), SFM_READ, &info));
  // sf_strerror(nullptr) is the reason of the last failed sf_open ("Format not recognised.").
  CW_CHECK(file, Error, "read_audio: cannot read '", name, "' as audio: ", sf_strerror(nullptr));
  check_not_truncated(file.get(), path);
  CW_CHECK(info.frames > 0, Error, "read_audio: '", name, "' holds no audio samples (0 frames)");
  CW_CHECK(info.channels > 0 && info.samplerate > 0, Error, "read_audio: '", name, "' has ", info.channels,
           " channels at ", info.samplerate, " Hz");

  // Normalized float reads (libsndfile's default): integers are divided by 2^(bits-1).
  const int64_t frames = info.frames, channels = info.channels;
  std::vector<float> interleaved(static_cast<size_t>(frames * channels));
  const sf_count_t got = sf_readf_float(file.get(), interleaved.data(), frames);
  CW_CHECK(got == frames, Error, "read_audio: '", name, "' is truncated or corrupt: read ", got, " of ",
           frames, " frames (", sf_strerror(file.get()), ")");

  Audio audio;
  audio.sample_rate = info.samplerate;
  if (channels == 1) {
    audio.samples = std::move(interleaved);
    return audio;
  }
  // Downmix by averaging (sum in double so that the mean of equal channels is exact).
  audio.samples.resize(static_cast<size_t>(frames));
  for (int64_t t = 0; t < frames; ++t) {
    double sum = 0.0;
    for (int64_t c = 0; c < channels; ++c) sum += interleaved[static_cast<size_t>(t * channels + c)];
    audio.samples[static_cast<size_t>(t)] = static_cast<float>(sum / static_cast<double>(channels));
  }
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
  if (in_rate == out_rate || samples.empty()) {
    if (in_rate == out_rate) return {samples.begin(), samples.end()};
    return {};
  }
  const size_t out_len = static_cast<size_t>(std::llround(
      static_cast<double>(samples.size()) * static_cast<double>(out_rate) / static_cast<double>(in_rate)));
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

Audio load_audio(const std::filesystem::path& path, int64_t target_rate) {
  Audio audio = read_audio(path);
  if (audio.sample_rate != target_rate) {
    audio.samples = resample(audio.samples, audio.sample_rate, target_rate);
    audio.sample_rate = target_rate;
  }
  return audio;
}

}  // namespace cw
