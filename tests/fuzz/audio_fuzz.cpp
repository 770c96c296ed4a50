// libFuzzer entry point for the audio reader (libsndfile behind read_audio, then libsoxr's
// resampler to 16 kHz): any bytes, read as a .wav and as a .flac file. The only acceptable outcomes
// are audio or a cw::Error; a crash, a sanitizer report, std::bad_alloc or a multi-gigabyte
// allocation (run with -rss_limit_mb) is a finding. Seeds: tests/fuzz/corpus/audio.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "data/audio_io.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const char* name : {"input.wav", "input.flac"}) {
    try {
      const cw::data::Audio audio = cw::data::load_audio(cw::fuzz::write_input(name, data, size), 16000);
      (void)audio;
    } catch (const cw::Error&) {
    }
  }
  return 0;
}
