// Importer of Speech Commands v2 (Warden 2018, the speech_commands_v0.02 archive) as the zero-shot
// keyword-spotting test: a folder per word holding 1 s WAVs named <speaker>_nohash_<n>.wav, the
// split lists testing_list.txt and validation_list.txt ("<word>/<file>" per line), and
// _background_noise_ (long noise recordings, no keyword: never a test row). The rows of one list
// form kws_test; keywords.tsv lists every word folder (35 in v2), the word being its own class text.
// Part of data/.
#pragma once

#include <string>

#include "data/import_part.h"

namespace cw::data {

struct SpeechCommandsOptions {
  std::string list = "testing_list.txt";  // or validation_list.txt
};

// Rows: id "speech_commands-<word>-<file stem>", transcript and label the word, voice
// "speech_commands:<speaker>:human". Dropped: a listed file missing or unreadable, a list line that
// is not <word>/<file>.wav or names a folder starting with '_'.
ImportPart import_speech_commands(const ImportOptions& o, const SpeechCommandsOptions& so = {});

}  // namespace cw::data
