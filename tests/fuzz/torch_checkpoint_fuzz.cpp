// libFuzzer entry point for the PyTorch checkpoint reader (data/torch_checkpoint.h): any bytes may
// be thrown at it (zip directory, pickle, storages), and the only acceptable outcomes are an
// indexed (and fully loaded) file or a cw::Error. Anything else (another exception, a crash, an
// AddressSanitizer report, a leak) is a finding. Build: tests/fuzz/CMakeLists.txt.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/torch_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = cw::data::TorchCheckpoint::from_bytes("fuzz", std::vector<char>(data, data + size));
    for (const auto& name : file.names()) {
      file.load(name);
      file.load(name, cw::DType::F64);
    }
  } catch (const cw::Error&) {
  }
  return 0;
}
