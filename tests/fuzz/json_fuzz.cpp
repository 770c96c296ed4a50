// libFuzzer entry point for the JSON reader every config, tokenizer, checkpoint state and metadata
// goes through (core/json_read.h): any bytes; the only acceptable outcomes are a document or a
// cw::Error naming its origin. A parsed document is then read the way the readers read one
// (typed values by key path, values shown in messages), so wrong shapes are exercised too.
// Seeds: tests/fuzz/corpus/json.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/json_read.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const cw::Json doc = cw::parse_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    const cw::JsonReader root(doc, "fuzz.json");
    (void)cw::json_show(doc);
    for (const char* key : {"hidden_size", "model_max_length", "step", "vocab", "dims"}) {
      try {
        if (root.has(key)) {
          (void)root.get_in(key, 0, 1 << 20);
          (void)root.get<std::vector<double>>(key);
        }
      } catch (const cw::Error&) {  // a wrong type or range: an error by design
      }
      try {
        (void)root.get_or<std::string>(key, "");
      } catch (const cw::Error&) {
      }
    }
    if (doc.is_array() && root.size() > 0) (void)cw::json_show(root.at(0).json());
  } catch (const cw::Error&) {
  }
  return 0;
}
