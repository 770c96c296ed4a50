// Scaffolding of the fuzz targets whose reader takes a path rather than bytes (libsndfile, zlib,
// the manifest and tokenizer readers): each input is written to a file of this process's own
// scratch folder, which the reader then opens as it would a user's file. Part of tests/fuzz.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace cw::fuzz {

// A scratch folder per process (libFuzzer's -jobs run several), created on first use.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::filesystem::path d =
        std::filesystem::path(tmp ? tmp : "/tmp") / ("cw-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes the input to scratch_dir()/name (replacing the previous input) and returns the path.
inline std::filesystem::path write_input(const std::string& name, const uint8_t* data, size_t size) {
  const std::filesystem::path path = scratch_dir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace cw::fuzz
