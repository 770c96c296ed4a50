// torchvision's eval transform on a PIL image, reproduced exactly on 8-bit pixels: Resize(size)
// (the shorter side to `size`, Pillow's bilinear filter with its antialiasing: the filter widens
// with the reduction factor, coefficients in Pillow's fixed point) followed by CenterCrop(crop)
// (torchvision 0.14's offsets: Python's round(), which rounds halves to even). The importers
// (import_image_corpus.h) apply it to every decoded JPEG (jpeg_decoder.h);
// tests/data/jpeg_decoder_test.cpp checks it against tools/make_jpeg_fixture.py. Part of data/.
#pragma once

#include <cstdint>
#include <utility>

#include "data/byte_image.h"

namespace cw::data {

// torchvision's output size of Resize(size) for an H x W image: the shorter side becomes `size`,
// the longer int(size * long / short) (truncated, as torchvision computes it). {height, width}.
std::pair<int64_t, int64_t> resized_size(int64_t height, int64_t width, int64_t size);

// Pillow's Image.resize((out_w, out_h), Image.BILINEAR) on an image of any channel count (each
// channel independently, as for Pillow's "L" and "RGB" modes). Returns the image unchanged when
// the size already matches (Pillow copies it). ValueError for a non-positive size or empty image.
ByteImage pil_resize_bilinear(const ByteImage& image, int64_t out_height, int64_t out_width);

// torchvision's CenterCrop(crop) of an image at least crop x crop: top = round((H - crop) / 2),
// left = round((W - crop) / 2) with halves to even. ValueError when the image is smaller.
ByteImage center_crop(const ByteImage& image, int64_t crop);

// Resize(resize) then CenterCrop(crop), resize >= crop (the usual eval transform: resize = crop
// as CLIP does, or 256 -> 224 as ImageNet's reference scripts do). ValueError otherwise.
ByteImage resize_center_crop(const ByteImage& image, int64_t resize, int64_t crop);

}  // namespace cw::data
