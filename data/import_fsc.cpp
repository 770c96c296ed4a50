// Fluent Speech Commands -> the intent test's manifest and intents.tsv (see import_fsc.h).
#include "data/import_fsc.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "data/import_audio_check.h"
#include "data/import_text.h"

namespace cw::data {
namespace fs = std::filesystem;
namespace {

std::string label_word(std::string s) {
  for (char& c : s)
    if (c == ' ') c = '_';
  return s;
}

}  // namespace

std::pair<std::string, std::string> fsc_intent_text(const std::string& action, const std::string& object,
                                                    const std::string& location) {
  const bool has_object = object != "none", has_location = location != "none";
  std::string name = action + (has_object ? " " + object : "") + (has_location ? " " + location : "");
  std::string description;
  if (action == "change language")
    description = has_object ? "change the language to " + object : "change the language";
  else
    description = action + (has_object ? " the " + object : "") + (has_location ? " in the " + location : "");
  return {ascii_lower(name), description};
}

ImportPart import_fsc(const ImportOptions& o, const FscOptions& fo) {
  ImportPart part;
  part.source = "fsc";
  part.root = fs::absolute(o.root);
  part.settings = {{"split", fo.split}};
  const fs::path csv = o.root / "data" / (fo.split + "_data.csv");
  require_file(
      csv, "FSC's list of the " + fo.split + " split; --root is the fluent_speech_commands_dataset folder");
  const std::vector<std::string> lines = read_lines(csv);
  CW_CHECK(!lines.empty(), Error, csv.string(), " is empty (expected a header line)");
  const auto header = split_csv_fields(lines[0]);
  CW_CHECK(header.has_value(), Error, csv.string(), ":1: unterminated quote in the header");
  const std::vector<size_t> col =
      column_indices(*header, {"path", "speakerId", "transcription", "action", "object", "location"}, csv);
  size_t need = 0;
  for (size_t c : col) need = std::max(need, c + 1);
  const fs::path root = fs::absolute(o.root);
  std::map<std::string, std::vector<std::string>> intents;  // label -> action, object, location
  std::vector<ImportRow> rows;
  for (size_t n = 1; n < lines.size(); ++n) {
    if (lines[n].empty()) continue;
    const std::string where = csv.string() + ":" + std::to_string(n + 1);
    const auto f = split_csv_fields(lines[n]);
    if (!f || f->size() < need) {
      part.summary.drop("malformed CSV line", where);
      continue;
    }
    const std::string &path = (*f)[col[0]], &speaker = (*f)[col[1]];
    const std::string &action = (*f)[col[3]], &object = (*f)[col[4]], &location = (*f)[col[5]];
    if (path.empty() || action.empty() || object.empty() || location.empty()) {
      part.summary.drop("malformed CSV line", where + ": an empty path, action, object or location");
      continue;
    }
    std::string why;
    const auto text = clean_transcript((*f)[col[2]], &why);
    if (!text) {
      part.summary.drop(why, where);
      continue;
    }
    const std::string label = label_word(action) + "_" + label_word(object) + "_" + label_word(location);
    const fs::path rel(path);
    rows.push_back({"fsc-" + speaker + "-" + rel.stem().string(), root / rel, *text,
                    "fsc:" + speaker + ":human", 0.0, "intent_test", label});
    intents[label] = {action, object, location};
  }
  keep_checked_rows(part, std::move(rows), o);
  std::map<std::string, bool> heard;
  for (const ImportRow& r : part.rows) heard[r.label] = true;
  ImportTable t{"intents.tsv", {"label", "scenario", "name", "description"}, {}};
  for (const auto& [label, aol] : intents) {
    if (!heard.count(label)) continue;
    const auto [name, description] = fsc_intent_text(aol[0], aol[1], aol[2]);
    t.rows.push_back({label, label_word(aol[1]), name, description});
  }
  part.tables.push_back(std::move(t));
  return part;
}

}  // namespace cw::data
