// Speech Commands v2 -> the keyword test's manifest and keywords.tsv (see import_speech_commands.h).
#include "data/import_speech_commands.h"

#include <algorithm>

#include "core/error.h"
#include "data/import_audio_check.h"
#include "data/import_text.h"

namespace cw::data {
namespace fs = std::filesystem;

ImportPart import_speech_commands(const ImportOptions& o, const SpeechCommandsOptions& so) {
  ImportPart part;
  part.source = "speech_commands";
  part.root = fs::absolute(o.root);
  part.settings = {{"list", so.list}};
  CW_CHECK(so.list == "testing_list.txt" || so.list == "validation_list.txt", Error,
           "speech_commands: the list must be testing_list.txt or validation_list.txt, got '", so.list, "'");
  const fs::path list = o.root / so.list;
  require_file(list, "Speech Commands' split list; --root is the unpacked speech_commands_v0.02 folder");
  // The classes: every word folder ('_background_noise_' and other '_' folders are not words).
  std::vector<std::string> words;
  for (const auto& e : fs::directory_iterator(o.root)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && !name.starts_with("_") && !name.starts_with(".")) words.push_back(name);
  }
  std::sort(words.begin(), words.end());
  CW_CHECK(!words.empty(), Error, "speech_commands: no word folder under ", o.root.string());
  if (fs::is_directory(o.root / "_background_noise_"))
    part.summary.notes.push_back("_background_noise_ skipped (noise recordings, no keyword)");
  std::vector<ImportRow> rows;
  const std::vector<std::string> lines = read_lines(list);
  const fs::path root = fs::absolute(o.root);
  for (size_t n = 0; n < lines.size(); ++n) {
    const std::string& line = lines[n];
    if (line.empty()) continue;
    const std::string where = list.string() + ":" + std::to_string(n + 1);
    const size_t slash = line.find('/');
    const std::string word = slash == std::string::npos ? "" : line.substr(0, slash);
    const std::string file = slash == std::string::npos ? "" : line.substr(slash + 1);
    if (word.empty() || file.empty() || file.find('/') != std::string::npos || !file.ends_with(".wav")) {
      part.summary.drop("malformed list line", where + ": '" + line.substr(0, 80) + "'");
      continue;
    }
    if (!std::binary_search(words.begin(), words.end(), word)) {
      part.summary.drop("not a keyword folder", where + ": '" + line.substr(0, 80) + "'");
      continue;
    }
    const std::string stem = fs::path(file).stem().string();
    const std::string speaker = stem.substr(0, stem.find("_nohash_"));
    rows.push_back({"speech_commands-" + word + "-" + stem, root / word / file, word,
                    "speech_commands:" + speaker + ":human", 0.0, "kws_test", word});
  }
  keep_checked_rows(part, std::move(rows), o);
  ImportTable t{"keywords.tsv", {"label", "keyword"}, {}};
  for (const std::string& w : words) t.rows.push_back({w, w});
  part.tables.push_back(std::move(t));
  return part;
}

}  // namespace cw::data
