// libFuzzer entry point for the CTranslate2 model-file reader: any bytes may be thrown at it, and
// the only acceptable outcomes are an indexed (and fully loaded) file or a cw::Error. Anything
// else (another exception, a crash, an AddressSanitizer report, a leak) is a finding.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/ctranslate2.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = cw::Ct2File::from_bytes("fuzz", std::vector<char>(data, data + size));
    for (const auto& name : file.names()) {
      file.load(name);
      file.load(name, cw::DType::F64);
      try {  // a bad scale, or a variable that is no integer scalar: errors by design
        file.load_dequantized(name);
        file.load_scalar_int(name);
      } catch (const cw::Error&) {
      }
    }
    for (const auto& alias : file.aliases()) file.info(alias.first);
  } catch (const cw::Error&) {
  }
  return 0;
}
