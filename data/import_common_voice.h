// Importer of Mozilla Common Voice (Ardila et al. 2020, commonvoice.mozilla.org) as speech-transcript
// pairs for training: a locale folder of the unpacked archive (cv-corpus-<version>/en) with clips/
// (MP3, read by libsndfile >= 1.1) and the split lists train.tsv, dev.tsv, test.tsv, validated.tsv
// (tab separated, a header naming client_id, path, sentence, ...; no quoting). train.tsv (or
// validated.tsv) goes to the corpus's train split, dev.tsv to valid; test.tsv is left out (the
// retrieval test is LibriSpeech's test-clean: one right answer per query). Part of data/.
#pragma once

#include <string>

#include "data/import_part.h"

namespace cw::data {

struct CommonVoiceOptions {
  // "train.tsv": Common Voice's own training list (at most a few clips per sentence);
  // "validated.tsv": every validated clip (several times the hours), minus the clips of dev.tsv
  // and test.tsv and every clip whose sentence occurs in them, so valid stays unseen.
  std::string train_list = "train.tsv";
};

// Rows: id "common_voice-<clip file stem>", voice "common_voice:<client_id, 16 chars>:human",
// transcript as written (natural case and punctuation). Dropped: a clip missing or unreadable, an
// empty or non-UTF-8 sentence, a line with too few fields, a validated clip of a dev/test sentence.
ImportPart import_common_voice(const ImportOptions& o, const CommonVoiceOptions& co = {});

}  // namespace cw::data
