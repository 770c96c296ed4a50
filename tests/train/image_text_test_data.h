// A small learnable image data set in tools/make_image_corpus.py's format for the image-task
// tests: 28x28 grey images of one bright horizontal bar whose row band is the class, with
// captions describing where the bar is (never the class name), train and test splits, written
// under <root>/fashion_mnist so that ImageDataset::load_named finds it there.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace cw::test {

namespace fs = std::filesystem;

struct ImageTaskTempDir {
  fs::path path;
  explicit ImageTaskTempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("cw_image_task_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ImageTaskTempDir() { fs::remove_all(path); }
  ImageTaskTempDir(const ImageTaskTempDir&) = delete;
  ImageTaskTempDir& operator=(const ImageTaskTempDir&) = delete;
};

inline std::string idx_bytes(const std::vector<int32_t>& dims, const std::vector<uint8_t>& data) {
  std::string b = {0, 0, 8, static_cast<char>(dims.size())};
  for (int32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      b.push_back(static_cast<char>(static_cast<uint32_t>(d) >> shift));
  b.append(data.begin(), data.end());
  return b;
}

// 4 classes; image i of a split has its bar in band (i % 4), jittered by a row or two.
inline void write_bar_image_set(const fs::path& root, int64_t n_train = 48, int64_t n_test = 16) {
  const fs::path dir = root / "fashion_mnist";
  fs::create_directories(dir);
  const char* where[4] = {"at the very top", "a little above the middle", "a little below the middle",
                          "at the very bottom"};
  auto split = [&](const std::string& name, int64_t n) {
    std::vector<uint8_t> px, lab;
    std::string tsv = "id\tindex\tlabel\tcaptions\tattributes\n";
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = i % 4, row = 2 + c * 7 + (i / 4) % 3;
      lab.push_back(static_cast<uint8_t>(c));
      for (int64_t y = 0; y < 28; ++y)
        for (int64_t x = 0; x < 28; ++x)
          px.push_back(static_cast<uint8_t>(y >= row && y < row + 3 && x >= 3 && x < 25 ? 230 : 10));
      tsv += name + "-" + std::to_string(i) + "\t" + std::to_string(i) + "\t" + std::to_string(c) + "\t" +
             "a bright line " + where[c] + " | a stripe " + where[c] + " of a dark picture\t\n";
    }
    std::ofstream(dir / (name + "-images"), std::ios::binary)
        << idx_bytes({static_cast<int32_t>(n), 28, 28}, px);
    std::ofstream(dir / (name + "-labels"), std::ios::binary) << idx_bytes({static_cast<int32_t>(n)}, lab);
    std::ofstream(dir / (name + ".tsv"), std::ios::binary) << tsv;
  };
  split("train", n_train);
  split("test", n_test);
  auto entry = [](const std::string& s, int64_t n) {
    return "\"" + s + "\": {\"images\": \"" + s + "-images\", \"labels\": \"" + s +
           "-labels\", \"manifest\": \"" + s + ".tsv\", \"rows\": " + std::to_string(n) + "}";
  };
  std::ofstream(dir / "dataset.json")
      << "{\"name\": \"fashion_mnist\", \"channels\": 1, \"height\": 28, \"width\": 28, "
         "\"classes\": [\"top\", \"upper\", \"lower\", \"bottom\"], "
         "\"prompt_templates\": [\"a photo of a {}.\", \"a {} line\", \"the {} one\"], "
         "\"horizontal_flip\": true, \"heldout_classes\": [], \"splits\": {"
      << entry("train", n_train) << ", " << entry("test", n_test) << "}}\n";
}

}  // namespace cw::test
