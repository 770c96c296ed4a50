// JPEG decoding through libjpeg-turbo (Debian: libjpeg62-turbo-dev), the library Pillow links
// on Debian, called with Pillow's settings (default IDCT, fancy upsampling, output in RGB), so
// that the pixels equal what torchvision's ImageFolder loader (PIL open + convert("RGB")) sees;
// tests/data/jpeg_decoder_test.cpp checks this against tools/make_jpeg_fixture.py. First stage of
// the importers' image path (here -> image_resize.h -> import_image_corpus.h). Part of data/.
//
// Grayscale JPEGs come out as RGB with the gray value in each channel (PIL's L -> RGB). CMYK and
// YCCK JPEGs (22 of ImageNet's training images) are refused: libjpeg cannot convert them to RGB
// and Pillow's inverted-CMYK formula is not reproduced here; the importers drop them and count
// them. A file that ends inside the image data ("Premature end of JPEG file": libjpeg's warning,
// after which it fills gray) is an error, as it is for Pillow ("image file is truncated"); other
// libjpeg warnings (extraneous bytes before a marker) are ignored, as Pillow does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "data/byte_image.h"

namespace cw::data {

// Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS): larger images are refused before
// any pixel memory is allocated.
constexpr int64_t kMaxJpegPixels = 89478485;

// Whether the bytes start with a JPEG's SOI marker and a marker (FF D8 FF).
bool looks_like_jpeg(const uint8_t* data, size_t size);

// Decodes one JPEG file's bytes to RGB (H, W, 3). Throws cw::ValueError whose message starts with
// `where` (the file or archive member) and gives libjpeg's reason for anything it cannot decode:
// not a JPEG (with the format when the signature is a known one: PNG, GIF, WebP, BMP), truncated,
// corrupt, CMYK, more than max_pixels (a fuzzer asks for less).
ByteImage decode_jpeg(const uint8_t* data, size_t size, const std::string& where,
                      int64_t max_pixels = kMaxJpegPixels);

}  // namespace cw::data
