// libFuzzer entry point for the WordPiece tokenizer's files: the first half of the input is read
// as vocab.txt and the second as tokenizer_config.json of a model folder, then a fixed sentence
// and the input itself (as text) are encoded. The only acceptable outcomes are ids or a cw::Error.
// Seeds: tests/fuzz/corpus/tokenizer.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "data/wordpiece_tokenizer.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const size_t half = size / 2;
  cw::fuzz::write_input("vocab.txt", data, half);
  cw::fuzz::write_input("tokenizer_config.json", data + half, size - half);
  try {
    const auto tok = cw::data::WordPieceTokenizer::from_dir(cw::fuzz::scratch_dir());
    (void)tok.encode("Turn the lights off in the kitchen, please!");
    try {
      (void)tok.encode(std::string(reinterpret_cast<const char*>(data), size));
    } catch (const cw::Error&) {  // invalid UTF-8 is refused by design
    }
  } catch (const cw::Error&) {
  }
  return 0;
}
