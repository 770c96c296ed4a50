// libFuzzer entry point for the WebDataset shard path: the tar reader (data/tar_reader.h, read
// through zlib, so gzip'd inputs too) over any bytes, and every ".jpg" member it yields through
// the JPEG decoder and the eval transform (data/jpeg_decoder.h, data/image_resize.h), as the
// importer does. The only acceptable outcomes are members and images, or a cw::Error. Seeds:
// tests/fuzz/corpus/tar.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "data/image_resize.h"
#include "data/jpeg_decoder.h"
#include "data/tar_reader.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // Small limits: a gzip'd input inflates far beyond its size, a JPEG header claims any size.
    cw::data::TarReader tar(cw::fuzz::write_input("input.tar", data, size), int64_t{1} << 20);
    while (auto m = tar.next()) {
      if (m->name.size() < 4 || m->name.compare(m->name.size() - 4, 4, ".jpg") != 0) continue;
      try {
        const cw::data::ByteImage img = cw::data::decode_jpeg(
            reinterpret_cast<const uint8_t*>(m->data.data()), m->data.size(), m->name, int64_t{1} << 20);
        (void)cw::data::resize_center_crop(img, 9, 8);
      } catch (const cw::Error&) {  // an undecodable image: the importer drops it
      }
    }
  } catch (const cw::Error&) {
  }
  return 0;
}
