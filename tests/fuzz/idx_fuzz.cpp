// libFuzzer entry point for the IDX reader (MNIST's format, plain or gzip'd through zlib): any
// bytes; the only acceptable outcomes are a checked array (then converted to image and label
// tensors) or a cw::Error. Seeds: tests/fuzz/corpus/idx.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "data/idx_reader.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const cw::data::IdxArray a = cw::data::read_idx(cw::fuzz::write_input("input.idx", data, size));
    try {
      (void)(a.dims.size() == 1 ? cw::data::idx_labels_to_tensor(a) : cw::data::idx_images_to_tensor(a));
    } catch (const cw::Error&) {  // a valid file of a rank or label range the converters refuse
    }
  } catch (const cw::Error&) {
  }
  return 0;
}
