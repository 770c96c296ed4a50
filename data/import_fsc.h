// Importer of Fluent Speech Commands (Lugosch et al. 2019, fluent.ai) as a second zero-shot
// speech-to-intent test: data/<split>_data.csv (columns: an unnamed index, path, speakerId,
// transcription, action, object, location; CSV with quotes) and the WAVs under wavs/speakers/.
// The intent of a row is action_object_location (31 in the data set); intents.tsv gives each a
// class name and a description in words ("increase the heat in the kitchen"). Part of data/.
#pragma once

#include <string>

#include "data/import_part.h"

namespace cw::data {

struct FscOptions {
  std::string split = "test";  // data/<split>_data.csv: test, valid
};

// Rows: id "fsc-<speaker>-<file stem>", voice "fsc:<speaker>:human", split intent_test. Dropped:
// a malformed CSV line, a WAV missing or unreadable, an empty or non-UTF-8 transcription.
ImportPart import_fsc(const ImportOptions& o, const FscOptions& fo = {});

// FSC's (action, object, location) as a class name and a description:
// ("change language", "Chinese", "none") -> {"change language Chinese", "change the language to Chinese"}.
std::pair<std::string, std::string> fsc_intent_text(const std::string& action, const std::string& object,
                                                    const std::string& location);

}  // namespace cw::data
