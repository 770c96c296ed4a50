// libFuzzer entry point for the safetensors reader: any bytes may be thrown at it, and the only
// acceptable outcomes are a parsed (and fully loaded) file or a cw::Error. Anything else (another
// exception, a crash, an AddressSanitizer report, a leak) is a finding. Build: tests/fuzz/CMakeLists.txt.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = cw::SafetensorsFile::from_bytes("fuzz", std::vector<char>(data, data + size));
    for (const auto& name : file.names()) {
      try {
        file.load(name);
        file.load(name, cw::DType::F64);
      } catch (const cw::DTypeError&) {  // a valid entry of a dtype we cannot hold (U64, F8_*)
      }
    }
  } catch (const cw::Error&) {
  }
  return 0;
}
