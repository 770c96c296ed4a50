// JPEG -> RGB bytes with libjpeg-turbo; see jpeg_decoder.h. libjpeg reports errors through a
// callback that must not return, so the usual setjmp/longjmp pattern is confined to decode_raw,
// which holds no C++ object with a destructor (longjmp would skip it).
#include "data/jpeg_decoder.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

// jpeglib.h needs FILE and size_t declared before it.
#include <jerror.h>
#include <jpeglib.h>

#include "core/error.h"

namespace cw::data {
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (level -1) and trace messages (level >= 0). Only a premature end of the data is fatal:
// libjpeg would fill the rest of the image with gray, where Pillow refuses a truncated file.
void on_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) on_error(cinfo);
}

enum class Outcome { Ok, Error, Cmyk, TooLarge };

// The libjpeg calls. `pixels` belongs to the caller, so nothing here needs unwinding.
Outcome decode_raw(const uint8_t* data, size_t size, jpeg_decompress_struct& cinfo, ErrorManager& err,
                   int64_t max_pixels, std::vector<uint8_t>& pixels, int64_t& height, int64_t& width) {
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  if (setjmp(err.jump) != 0) {
    jpeg_destroy_decompress(&cinfo);
    return Outcome::Error;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return Outcome::Cmyk;
  }
  if (static_cast<int64_t>(cinfo.image_width) * static_cast<int64_t>(cinfo.image_height) > max_pixels) {
    height = cinfo.image_height;
    width = cinfo.image_width;
    jpeg_destroy_decompress(&cinfo);
    return Outcome::TooLarge;
  }
  // Pillow's settings are libjpeg's defaults (JDCT_ISLOW, fancy upsampling); only the output
  // color space is chosen: RGB, which also expands grayscale.
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  height = cinfo.output_height;
  width = cinfo.output_width;
  const size_t stride = static_cast<size_t>(width) * 3;
  pixels.resize(static_cast<size_t>(height) * stride);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = pixels.data() + static_cast<size_t>(cinfo.output_scanline) * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return Outcome::Ok;
}

// Names a few formats by their signature, for the message about a file that is not a JPEG (an
// ImageNet training "JPEG" is really a PNG).
const char* other_format(const uint8_t* d, size_t n) {
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return "PNG";
  if (n >= 6 && (std::memcmp(d, "GIF87a", 6) == 0 || std::memcmp(d, "GIF89a", 6) == 0)) return "GIF";
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) return "WebP";
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return "BMP";
  return nullptr;
}

}  // namespace

bool looks_like_jpeg(const uint8_t* data, size_t size) {
  return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

ByteImage decode_jpeg(const uint8_t* data, size_t size, const std::string& where, int64_t max_pixels) {
  CW_CHECK(size > 0, ValueError, where, ": empty file, not a JPEG");
  if (!looks_like_jpeg(data, size)) {
    const char* fmt = other_format(data, size);
    CW_CHECK(false, ValueError, where, ": not a JPEG file", fmt ? std::string(" (a ") + fmt + " image)" : "");
  }
  ByteImage img;
  img.channels = 3;
  jpeg_decompress_struct cinfo{};
  ErrorManager err{};
  const Outcome outcome = decode_raw(data, size, cinfo, err, max_pixels, img.pixels, img.height, img.width);
  if (outcome == Outcome::Ok) return img;
  if (outcome == Outcome::Cmyk)
    throw ValueError(detail::cat(where, ": CMYK JPEG, not decoded (only RGB and grayscale are)"));
  if (outcome == Outcome::TooLarge)
    throw ValueError(detail::cat(where, ": ", img.width, " x ", img.height, " pixels, over the limit of ",
                                 max_pixels, " (Pillow's decompression-bomb check)"));
  throw ValueError(detail::cat(where, ": corrupt JPEG: ", err.message));
}

}  // namespace cw::data
