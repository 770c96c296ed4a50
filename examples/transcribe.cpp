// transcribe: speech to text with the pretrained Whisper tiny.en (models/whisper_transcriber.h).
// Usage:
//   transcribe [--beam N] [--batch N] [--model DIR] FILE...
// Any rate and format read_audio handles (resampled to 16 kHz); audio longer than 30 s is cut into
// 30 s windows. Prints one line per file: the transcript, after "FILE<TAB>" when there are several.
// --beam 1 is greedy search; the default 5 is CTranslate2's. The model folder is found as
// data/model_files.h describes (tools/setup.sh installs it) unless --model names one.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "data/audio_io.h"
#include "data/model_files.h"
#include "models/whisper_transcriber.h"

using namespace cw;

namespace {

int usage(FILE* to) {
  std::fprintf(to, "usage: transcribe [--beam N] [--batch N] [--model DIR] FILE...\n");
  return to == stdout ? 0 : 2;
}

// A positive integer option value, or nullopt.
std::optional<int64_t> positive(const char* s) {
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (end == s || *end != '\0' || v < 1) return std::nullopt;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::filesystem::path> dir;
  models::WhisperTranscribeOptions options;
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--beam" || a == "--batch") && i + 1 < argc) {
      const auto v = positive(argv[++i]);
      if (!v) {
        std::fprintf(stderr, "transcribe: %s needs a positive integer, got '%s'\n", a.c_str(), argv[i]);
        return 2;
      }
      (a == "--beam" ? options.decode.beam_size : options.batch_size) = *v;
    } else if (a == "--model" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--help" || a == "-h") {
      return usage(stdout);
    } else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "transcribe: unknown option '%s'\n", a.c_str());
      return usage(stderr);
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) return usage(stderr);
  try {
    if (dir)
      CW_CHECK(
          std::filesystem::exists(*dir / "model.bin") || std::filesystem::exists(*dir / "model.safetensors"),
          Error, "--model '", dir->string(), "' holds neither model.bin nor model.safetensors");
    const auto t0 = std::chrono::steady_clock::now();
    const models::WhisperTranscriber model(dir ? *dir : data::find_whisper_dir());
    const auto t1 = std::chrono::steady_clock::now();
    std::vector<std::vector<float>> audio;
    double seconds = 0.0;
    for (const auto& f : files) {
      audio.push_back(data::load_audio(f, 16000).samples);
      seconds += static_cast<double>(audio.back().size()) / 16000.0;
    }
    const std::vector<std::string> texts = model.transcribe(audio, options);
    const auto t2 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < files.size(); ++i) {
      if (files.size() > 1) std::printf("%s\t", files[i].string().c_str());
      std::printf("%s\n", texts[i].c_str());
    }
    std::fprintf(stderr, "transcribe: model loaded in %.2f s; %.1f s of audio in %.2f s (beam %lld)\n",
                 std::chrono::duration<double>(t1 - t0).count(), seconds,
                 std::chrono::duration<double>(t2 - t1).count(),
                 static_cast<long long>(options.decode.beam_size));
  } catch (const Error& e) {
    std::fprintf(stderr, "transcribe: %s\n", e.what());
    return 1;
  }
  return 0;
}
