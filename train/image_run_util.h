// Small helpers the image tasks' and the CTC pretraining's loops share (ssl_trainer.cpp,
// image_text_trainer.cpp, asr_trainer.cpp): atomic text files, elapsed time, and the
// per-process start of a run folder. Part of train/.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace cw::train {

using ImageClock = std::chrono::steady_clock;

inline double seconds_since(ImageClock::time_point t0) {
  return std::chrono::duration<double>(ImageClock::now() - t0).count();
}

// Writes `text` to a temporary file beside `path` and renames it over `path`.
void write_text_file_atomic(const std::filesystem::path& path, const std::string& text);

}  // namespace cw::train
