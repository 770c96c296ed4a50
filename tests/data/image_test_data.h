// A tiny image data set in the format of tools/make_image_corpus.py (dataset.json, a manifest,
// IDX files written byte by byte) for the ImageDataset and ImageLoader tests, in a scratch folder
// removed at the end of the test.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace cw::test {

namespace fs = std::filesystem;

struct ImageTempDir {
  fs::path path;
  explicit ImageTempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("cw_image_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ImageTempDir() { fs::remove_all(path); }
  ImageTempDir(const ImageTempDir&) = delete;
  ImageTempDir& operator=(const ImageTempDir&) = delete;
  fs::path operator/(const std::string& file) const { return path / file; }
};

inline void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

inline std::string idx_file(const std::vector<int32_t>& dims, const std::vector<uint8_t>& data) {
  std::string b = {0, 0, 8, static_cast<char>(dims.size())};
  for (int32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      b.push_back(static_cast<char>(static_cast<uint32_t>(d) >> shift));
  b.append(data.begin(), data.end());
  return b;
}

// Pixel value of image n, row y, column x, channel c: never 0 (so zero padding is recognisable),
// and all different within one channel of an image of at most 250 pixels.
inline uint8_t test_pixel(int64_t n, int64_t y, int64_t x, int64_t c, int64_t W) {
  return static_cast<uint8_t>(1 + (n * 17 + c * 61 + y * W + x) % 250);
}

struct TinyImageSet {
  int64_t n = 10, c = 3, h = 4, w = 5, classes = 4;
  bool flip = true;
  int captions_per_row = 3;
};

// Writes <dir>/dataset.json, train.tsv, train-images (N, H, W, C) and train-labels; label of
// image i is i % classes; row i lists image i; its captions are "image i caption k".
inline void write_tiny_image_set(const fs::path& dir, const TinyImageSet& s = {}) {
  std::vector<uint8_t> px, lab;
  for (int64_t i = 0; i < s.n; ++i) {
    lab.push_back(static_cast<uint8_t>(i % s.classes));
    for (int64_t y = 0; y < s.h; ++y)
      for (int64_t x = 0; x < s.w; ++x)
        for (int64_t ch = 0; ch < s.c; ++ch) px.push_back(test_pixel(i, y, x, ch, s.w));
  }
  std::vector<int32_t> dims = {static_cast<int32_t>(s.n), static_cast<int32_t>(s.h),
                               static_cast<int32_t>(s.w)};
  if (s.c != 1) dims.push_back(static_cast<int32_t>(s.c));
  write_file(dir / "train-images", idx_file(dims, px));
  write_file(dir / "train-labels", idx_file({static_cast<int32_t>(s.n)}, lab));
  std::string classes;
  for (int64_t k = 0; k < s.classes; ++k)
    classes += std::string(k ? ", " : "") + "\"class" + std::to_string(k) + "\"";
  write_file(dir / "dataset.json",
             "{\"name\": \"tiny\", \"channels\": " + std::to_string(s.c) + ", \"height\": " +
                 std::to_string(s.h) + ", \"width\": " + std::to_string(s.w) + ", \"classes\": [" + classes +
                 "], \"prompt_templates\": [\"a photo of a {}.\", \"{} again\"], \"horizontal_flip\": " +
                 (s.flip ? "true" : "false") +
                 ", \"heldout_classes\": [3], \"splits\": {\"train\": {\"images\": \"train-images\", "
                 "\"labels\": \"train-labels\", \"manifest\": \"train.tsv\", \"rows\": " +
                 std::to_string(s.n) + "}}}\n");
  std::string tsv = "id\tindex\tlabel\tcaptions\tattributes\n";
  for (int64_t i = 0; i < s.n; ++i) {
    tsv +=
        "train-" + std::to_string(i) + "\t" + std::to_string(i) + "\t" + std::to_string(i % s.classes) + "\t";
    for (int k = 0; k < s.captions_per_row; ++k)
      tsv += (k ? " | " : "") + ("image " + std::to_string(i) + " caption " + std::to_string(k));
    tsv += "\tcount=" + std::to_string(i) + "\n";
  }
  write_file(dir / "train.tsv", tsv);
}

}  // namespace cw::test
