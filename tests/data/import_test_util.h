// What the importer tests share: a scratch folder, the options of a quiet import into it, and a
// look-up of a part's rows by id. See import_test_layouts.h for the fake corpora themselves.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "data/import_part.h"
#include "data/speech_manifest.h"

namespace cw::test {

namespace fs = std::filesystem;

struct ImportScratch {
  fs::path path;
  explicit ImportScratch(const std::string& name) {
    path = fs::temp_directory_path() / ("cw_import_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ImportScratch() { fs::remove_all(path); }
  ImportScratch(const ImportScratch&) = delete;
  ImportScratch& operator=(const ImportScratch&) = delete;
};

inline data::ImportOptions quiet_import(const fs::path& root, const fs::path& out, bool decode = true) {
  data::ImportOptions o;
  o.root = root;
  o.out = out;
  o.threads = 2;
  o.decode_audio = decode;
  return o;
}

inline std::string file_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The rows of a part's split as the corpus loader reads them, by id.
inline std::map<std::string, data::Utterance> rows_by_id(const fs::path& tsv) {
  std::map<std::string, data::Utterance> m;
  const data::SpeechManifest manifest = data::SpeechManifest::read(tsv);
  for (const auto& u : manifest.utterances()) m[u.id] = u;
  return m;
}

inline int64_t dropped(const data::ImportPart& p, const std::string& reason) {
  const auto it = p.summary.dropped.find(reason);
  return it == p.summary.dropped.end() ? 0 : it->second.rows;
}

}  // namespace cw::test
