// What every importer of a public speech corpus produces (data/import_librispeech.h, ...): an
// ImportPart, the rows it kept per split with what it dropped and why, written to
// <out>/parts/<source>/ as manifests in the corpus format (data/speech_manifest.h) plus part.json;
// data/import_compose.h then assembles the parts into the corpus `train` reads. Also the options
// every importer shares (the downloaded root, threads, audio limits, progress). Part of data/.
//
// Layout of one part:
//   <out>/parts/<source>/<split>.tsv     manifest rows of one corpus split (train, valid, ...)
//   <out>/parts/<source>/intents.tsv     (intent tests) label, scenario, name, description
//   <out>/parts/<source>/keywords.tsv    (keyword tests) label, keyword
//   <out>/parts/<source>/audio_check.tsv what was learnt of each audio file (resume state)
//   <out>/parts/<source>/part.json       written last: splits, counts, hours, drops and reasons
// Audio is referenced in place by absolute path, so a manifest means the same files in any folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "data/audio_io.h"

namespace cw::data {

// Starts a progress meter for a phase ("librispeech: audio", total items) and returns the function
// that counts items done (called from several threads). Empty: no progress lines.
using ProgressStart = std::function<std::function<void(int64_t)>(const std::string& what, int64_t total)>;

// What every importer takes.
struct ImportOptions {
  std::filesystem::path root;  // the corpus as downloaded and unpacked
  std::filesystem::path out;   // the corpus folder the part is written into
  int threads = 1;             // audio checks in parallel
  bool decode_audio = true;    // decode every file (finds truncated files); false: headers only
  AudioLimits limits;          // what read_audio accepts (--data.max_audio_seconds etc. of train)
  ProgressStart progress;
  std::ostream* log = nullptr;  // summary and notes; nullptr: quiet
};

// One manifest row before it is written. `audio` is absolute.
struct ImportRow {
  std::string id;
  std::filesystem::path audio;
  std::string transcript, voice;
  double duration = 0.0;
  std::string split, label;
};

// Rows kept per split and rows dropped per reason, with the first few dropped items named.
struct ImportSummary {
  struct Kept {
    int64_t rows = 0;
    double seconds = 0.0;
  };
  struct Dropped {
    int64_t rows = 0;
    std::vector<std::string> examples;  // at most kExamples, "<what>: <detail>"
  };
  static constexpr size_t kExamples = 3;
  std::map<std::string, Kept> kept;        // split -> rows and audio time
  std::map<std::string, Dropped> dropped;  // reason -> rows and examples
  std::vector<std::string> notes;          // e.g. "subset dev-other found, not used"

  void keep(const ImportRow& row);
  void drop(const std::string& reason, const std::string& example);
  int64_t kept_rows() const;
  int64_t dropped_rows() const;
  // "kept: train 1200 rows (3.41 h), ...; dropped 7: no transcript 3 (e.g. ...), ..." over lines.
  std::string text(const std::string& source) const;
};

// A table with a header line: intents.tsv (label, scenario, name, description) or keywords.tsv
// (label, keyword); `file` is its name in the part and in the corpus.
struct ImportTable {
  std::string file;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

struct ImportPart {
  std::string source;  // "librispeech", "common_voice", "slurp", "speech_commands", "fsc"
  std::filesystem::path root;
  std::vector<ImportRow> rows;      // every split; written sorted by id within a split
  std::vector<ImportTable> tables;  // label tables of a benchmark part
  ImportSummary summary;
  std::map<std::string, std::string> settings;  // the importer's options, recorded in part.json
};

// The folder of a source's part under a corpus folder.
std::filesystem::path part_dir(const std::filesystem::path& out, const std::string& source);

// Writes the part (see the layout above). A file whose bytes would not change is left alone, so a
// rerun on unchanged input touches nothing and the feature caches keyed on manifests stay valid.
// part.json is removed first and written last: a part without it is incomplete and ignored.
void write_part(const ImportPart& part, const std::filesystem::path& out);

// The manifest text of rows (header + one line per row, in the given order).
std::string manifest_text(const std::vector<ImportRow>& rows);
std::string table_text(const ImportTable& table);

// Writes `text` to `path` through a temporary file in the same folder and a rename; does nothing
// when the file already holds exactly these bytes. Returns whether it wrote. Throws cw::Error
// naming the file on failure (and leaves no temporary file).
bool write_text_if_changed(const std::filesystem::path& path, const std::string& text);

// An importer's input file that must exist: cw::Error naming it and what it is otherwise.
void require_file(const std::filesystem::path& path, const std::string& what);

}  // namespace cw::data
