// Checking the audio an importer references in place (data/import_part.h): every file is opened
// with the front end's own reader (data/audio_io.h, the same AudioLimits train applies), decoded in
// full by default so that a truncated file is found now and not in the middle of a feature-cache
// build, and its duration measured for the manifest. Checks run on several threads and are
// remembered in <part>/audio_check.tsv (path, size, mtime), so an interrupted import resumes where
// it stopped and a rerun on unchanged files opens none of them. Part of data/.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/import_part.h"

namespace cw::data {

struct AudioCheck {
  double seconds = 0.0;  // duration (decoded samples / rate, or the header's frames / rate)
  std::string error;     // why the file cannot be used; empty when it can
  bool ok() const { return error.empty(); }
};

// Checks `files` (see above), resuming from and updating `state_file`. `what` names the phase in
// progress lines. Results are in the order of `files`.
std::vector<AudioCheck> check_audio_files(const std::vector<std::filesystem::path>& files,
                                          const std::filesystem::path& state_file, const ImportOptions& o,
                                          const std::string& what);

// The last step of every importer: checks the candidates' audio (state in the part's folder),
// keeps the readable rows with their measured duration in part.rows and drops the others with
// the reason "audio unreadable" (missing, not audio, truncated, outside the AudioLimits). A
// duplicate id (two list entries naming one clip) is dropped as "duplicate id".
void keep_checked_rows(ImportPart& part, std::vector<ImportRow> candidates, const ImportOptions& o);

}  // namespace cw::data
