// Test helper: JPEG files written with libjpeg (the product only decodes), for the decoder and
// importer tests that build fake corpora (ImageNet folders, WebDataset shards) themselves. Part
// of tests/ (cw_data_tests and cw_train_tests link libjpeg for it).
#pragma once

// jpeglib.h needs FILE and size_t declared before it.
#include <cstdio>
// (kept apart so that include sorting leaves it first)
#include <jpeglib.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace cw::test {

// Encodes (H, W, C) bytes (C = 3 RGB or 1 grayscale) as a baseline JPEG of the given quality.
inline std::string encode_jpeg(const std::vector<uint8_t>& pixels, int width, int height, int channels,
                               int quality = 90) {
  if (pixels.size() !=
      static_cast<size_t>(width) * static_cast<size_t>(height) * static_cast<size_t>(channels))
    throw std::invalid_argument("encode_jpeg: pixel count does not match the size");
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr err{};
  cinfo.err = jpeg_std_error(&err);  // test inputs are valid: libjpeg's default exit() on error is fine
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = channels;
  cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  const size_t stride = static_cast<size_t>(width) * static_cast<size_t>(channels);
  while (cinfo.next_scanline < cinfo.image_height) {
    auto* row = const_cast<JSAMPLE*>(pixels.data() + cinfo.next_scanline * stride);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<const char*>(buffer), size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

// A w x h RGB picture: a color gradient whose hue depends on `tint` (so classes differ), with a
// bright square whose position depends on `tint` too.
inline std::vector<uint8_t> test_picture(int width, int height, int tint) {
  std::vector<uint8_t> px;
  px.reserve(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const bool square = x / (width / 4 + 1) == tint % 4 && y / (height / 4 + 1) == (tint / 4) % 4;
      px.push_back(static_cast<uint8_t>(square ? 250 : (x * 200 / width + tint * 40) % 256));
      px.push_back(static_cast<uint8_t>(square ? 250 : (y * 180 / height + tint * 70) % 256));
      px.push_back(static_cast<uint8_t>(square ? 250 : (tint * 90 + (x + y) * 2) % 256));
    }
  return px;
}

}  // namespace cw::test
