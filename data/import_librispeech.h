// Importer of LibriSpeech (Panayotov et al. 2015, openslr.org/12) as speech-transcript pairs for
// training: the unpacked archives' <subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt files
// ("<utterance id> <TRANSCRIPT>" per line) beside <utterance id>.flac. Training subsets go to the
// corpus's train split, dev-clean to valid, test-clean to retrieval_test (each transcript once:
// LibriSpeech's are read book sentences). Transcripts are lower-cased (the archives are all upper
// case; the text tower is uncased anyway). Part of data/ (see data/import_part.h).
#pragma once

#include <string>
#include <vector>

#include "data/import_part.h"

namespace cw::data {

struct LibriSpeechOptions {
  // Subset folder names per corpus split. Missing subsets are a note, not an error, so that a user
  // with train-clean-100 alone can start; none found at all is an error.
  std::vector<std::string> train = {"train-clean-100", "train-clean-360", "train-other-500"};
  std::vector<std::string> valid = {"dev-clean"};
  std::vector<std::string> retrieval = {"test-clean"};
};

// Reads <root>/LibriSpeech/<subset> or <root>/<subset>. Rows: id "librispeech-<utterance id>",
// voice "librispeech:<speaker>:human". Dropped: a FLAC with no transcript line, a transcript line
// whose FLAC is missing or unreadable, a malformed line, an empty or non-UTF-8 transcript.
ImportPart import_librispeech(const ImportOptions& o, const LibriSpeechOptions& lo = {});

}  // namespace cw::data
