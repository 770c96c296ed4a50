// libFuzzer entry point for the corpus manifests (data/speech_manifest.h): any bytes read as a
// manifest and as a label table (intents.tsv, keywords.tsv). The only acceptable outcomes are
// parsed rows or a cw::Error naming the file and line. Seeds: tests/fuzz/corpus/manifest.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "data/speech_manifest.h"
#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = cw::fuzz::write_input("manifest.tsv", data, size);
  try {
    const cw::data::SpeechManifest m = cw::data::SpeechManifest::read(path);
    (void)m.hours();
  } catch (const cw::Error&) {
  }
  try {
    const cw::data::LabelTable t = cw::data::read_label_table(path);
    if (t.size() > 0 && !t.columns.empty()) (void)t.get(0, t.columns[0]);
  } catch (const cw::Error&) {
  }
  return 0;
}
