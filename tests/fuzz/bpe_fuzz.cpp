// libFuzzer entry point for Whisper's byte-level BPE tokenizer (data/bpe_tokenizer.h): the first
// half of the input is read as tokenizer.json, the second half is encoded as text and its bytes
// decoded as ids. The only acceptable outcomes are ids/text or a cw::Error. Seeds:
// tests/fuzz/corpus/bpe (the committed tiny tokenizer with a sentence).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/bpe_tokenizer.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const size_t half = size / 2;
  const auto file = cw::fuzz::write_input("tokenizer.json", data, half);
  try {
    const cw::data::BpeTokenizer tok = cw::data::BpeTokenizer::from_tokenizer_json(file);
    const std::string text(reinterpret_cast<const char*>(data + half), size - half);
    try {
      const std::vector<int64_t> ids = tok.encode(text);
      (void)tok.decode(ids, false);
    } catch (const cw::Error&) {
    }
    std::vector<int64_t> ids;
    for (size_t i = half; i < size; ++i)
      ids.push_back(static_cast<int64_t>(data[i]) % (tok.vocab_size() + 1));
    try {
      (void)tok.decode(ids, true);
    } catch (const cw::Error&) {  // an id past the vocabulary: IndexError by design
    }
  } catch (const cw::Error&) {
  }
  return 0;
}
