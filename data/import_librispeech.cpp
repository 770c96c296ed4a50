// LibriSpeech -> manifests (see import_librispeech.h).
#include "data/import_librispeech.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "data/import_audio_check.h"
#include "data/import_text.h"

namespace cw::data {
namespace fs = std::filesystem;
namespace {

std::string joined(const std::vector<std::string>& xs) {
  std::string s;
  for (const auto& x : xs) s += (s.empty() ? "" : ",") + x;
  return s;
}

// One subset folder: every *.trans.txt below it (speaker/chapter nesting, at any depth).
void read_subset(const fs::path& dir, const std::string& split, ImportPart& part,
                 std::vector<ImportRow>& rows) {
  std::vector<fs::path> transcripts;
  std::set<fs::path> flacs;
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name.ends_with(".trans.txt")) transcripts.push_back(e.path());
    if (e.path().extension() == ".flac") flacs.insert(e.path());
  }
  std::sort(transcripts.begin(), transcripts.end());
  std::set<fs::path> listed;
  for (const fs::path& t : transcripts) {
    const std::vector<std::string> lines = read_lines(t);
    for (size_t n = 0; n < lines.size(); ++n) {
      const std::string& line = lines[n];
      if (line.empty()) continue;
      const std::string where = t.string() + ":" + std::to_string(n + 1);
      const size_t space = line.find(' ');
      if (space == 0 || space == std::string::npos) {
        part.summary.drop("malformed transcript line", where + ": '" + line.substr(0, 60) + "'");
        continue;
      }
      const std::string utt = line.substr(0, space);
      const fs::path audio = t.parent_path() / (utt + ".flac");
      listed.insert(audio);
      std::string why;
      const auto text = clean_transcript(line.substr(space + 1), &why);
      if (!text) {
        part.summary.drop(why, where + " (" + utt + ")");
        continue;
      }
      const std::string speaker = utt.substr(0, utt.find('-'));
      rows.push_back({"librispeech-" + utt, fs::absolute(audio), ascii_lower(*text),
                      "librispeech:" + speaker + ":human", 0.0, split, ""});
    }
  }
  for (const fs::path& f : flacs)
    if (!listed.count(f)) part.summary.drop("no transcript", f.string());
}

}  // namespace

ImportPart import_librispeech(const ImportOptions& o, const LibriSpeechOptions& lo) {
  ImportPart part;
  part.source = "librispeech";
  part.root = fs::absolute(o.root);
  part.settings = {
      {"train", joined(lo.train)}, {"valid", joined(lo.valid)}, {"retrieval_test", joined(lo.retrieval)}};
  CW_CHECK(fs::is_directory(o.root), Error, "librispeech: --root ", o.root.string(), " is not a folder");
  const fs::path base = fs::is_directory(o.root / "LibriSpeech") ? o.root / "LibriSpeech" : o.root;
  std::vector<ImportRow> rows;
  std::set<std::string> used;
  int found = 0;
  const std::vector<std::pair<std::string, const std::vector<std::string>*>> plan = {
      {"train", &lo.train}, {"valid", &lo.valid}, {"retrieval_test", &lo.retrieval}};
  for (const auto& [split, subsets] : plan)
    for (const std::string& s : *subsets) {
      used.insert(s);
      if (!fs::is_directory(base / s)) {
        part.summary.notes.push_back("subset " + s + " (for " + split + ") not found under " + base.string());
        continue;
      }
      ++found;
      read_subset(base / s, split, part, rows);
    }
  CW_CHECK(found > 0, Error, "librispeech: no subset folder under ", base.string(), " (expected e.g. ",
           (base / "train-clean-100").string(), " from train-clean-100.tar.gz)");
  std::vector<std::string> unused;  // sorted: part.json is the same bytes on a rerun
  for (const auto& e : fs::directory_iterator(base))
    if (e.is_directory() && !used.count(e.path().filename().string()))
      unused.push_back(e.path().filename().string());
  std::sort(unused.begin(), unused.end());
  for (const std::string& u : unused)
    part.summary.notes.push_back("folder " + u + " not used (not in the plan)");
  keep_checked_rows(part, std::move(rows), o);
  return part;
}

}  // namespace cw::data
