// An 8-bit image in memory, pixels (H, W, C) row-major, channels last as image libraries store
// them: what the JPEG decoder (jpeg_decoder.h) produces and the eval transform (image_resize.h)
// consumes; the importers (import_image_corpus.h) store it as one row of an IDX file. Part of data/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cw::data {

struct ByteImage {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // (H, W, C)

  uint8_t at(int64_t y, int64_t x, int64_t c) const {
    return pixels[static_cast<size_t>((y * width + x) * channels + c)];
  }
};

}  // namespace cw::data
