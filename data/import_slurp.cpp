// SLURP -> the intent test's manifest and intents.tsv (see import_slurp.h).
#include "data/import_slurp.h"

#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/import_audio_check.h"
#include "data/import_text.h"

namespace cw::data {
namespace fs = std::filesystem;
namespace {

// SLURP's scenario and action names glue words together ("createoradd", "lightoff") or abbreviate
// ("qa", "iot"); a text tower reads words. One table, checked against the SLURP intent inventory
// (18 scenarios, 46 actions); anything not in it passes through.
const std::map<std::string, std::string>& readable_words() {
  static const std::map<std::string, std::string> m = {
      {"iot", "smart home"},
      {"qa", "question"},
      {"hue", "lights"},
      {"wemo", "smart plug"},
      {"lightchange", "change light color"},
      {"lightdim", "dim"},
      {"lightoff", "off"},
      {"lighton", "on"},
      {"lightup", "brighten"},
      {"createoradd", "create or add"},
      {"querycontact", "query contact"},
      {"addcontact", "add contact"},
      {"sendemail", "send email"},
      {"commandstop", "stop"},
      {"dontcare", "don't care"},
      {"dislikeness", "dislike"},
      {"likeness", "like"},
      {"maths", "math"},
      {"factoid", "fact"},
  };
  return m;
}

std::string readable(const std::string& name) {
  std::string out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('_', start);
    if (end == std::string::npos) end = name.size();
    std::string w = name.substr(start, end - start);
    const auto it = readable_words().find(w);
    if (it != readable_words().end()) w = it->second;
    if (!w.empty()) out += (out.empty() ? "" : " ") + w;
    start = end + 1;
  }
  return out;
}

std::string string_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::pair<std::string, std::string> slurp_intent_text(const std::string& scenario,
                                                      const std::string& action) {
  const std::string s = readable(scenario), a = readable(action);
  return {s + " " + a, "a request to the " + s + " assistant: " + a};
}

ImportPart import_slurp(const ImportOptions& o, const SlurpOptions& so) {
  ImportPart part;
  part.source = "slurp";
  part.root = fs::absolute(o.root);
  part.settings = {{"split", so.split}};
  const fs::path jsonl = o.root / "dataset" / "slurp" / (so.split + ".jsonl");
  require_file(jsonl,
               "SLURP's list of the " + so.split + " split; --root is the clone of the slurp repository");
  std::vector<fs::path> dirs = so.audio_dirs;
  if (dirs.empty())
    for (const char* d : {"audio/slurp_real", "slurp_real", "audio/slurp_synth", "slurp_synth"})
      if (fs::is_directory(o.root / d)) dirs.push_back(o.root / d);
  CW_CHECK(!dirs.empty(), Error, "slurp: no audio folder under ", o.root.string(),
           " (expected audio/slurp_real from slurp_real.tar.gz; or name folders with --audio)");
  std::map<std::string, std::pair<std::string, std::string>> intents;  // label -> scenario, action
  std::vector<ImportRow> rows;
  const std::vector<std::string> lines = read_lines(jsonl);
  for (size_t n = 0; n < lines.size(); ++n) {
    if (lines[n].empty()) continue;
    const std::string where = jsonl.string() + ":" + std::to_string(n + 1);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(lines[n]);
    } catch (const nlohmann::json::exception& e) {
      part.summary.drop("malformed JSON line", where + ": " + e.what());
      continue;
    }
    if (!j.is_object()) {
      part.summary.drop("malformed JSON line", where + ": not an object");
      continue;
    }
    const std::string scenario = string_field(j, "scenario"), action = string_field(j, "action");
    const auto recs = j.find("recordings");
    if (scenario.empty() || action.empty() || recs == j.end() || !recs->is_array()) {
      part.summary.drop("record without scenario, action or recordings", where);
      continue;
    }
    std::string why;
    const auto text = clean_transcript(string_field(j, "sentence"), &why);
    if (!text) {
      part.summary.drop(why, where);
      continue;
    }
    const std::string label = scenario + "_" + action;
    for (const nlohmann::json& r : *recs) {
      const std::string file = r.is_object() ? string_field(r, "file") : std::string();
      if (file.empty() || file.find('/') != std::string::npos) {
        part.summary.drop("record without scenario, action or recordings",
                          where + ": a recording without a file");
        continue;
      }
      fs::path audio = dirs.front() / file;
      for (const fs::path& d : dirs)
        if (fs::exists(d / file)) {
          audio = d / file;
          break;
        }
      // "audio-1490200477-headset.flac" and "audio-1490200477.flac" (the far microphone): the
      // session, the speaker's closest identity SLURP gives, is the first two parts.
      const std::string stem = fs::path(file).stem().string();
      const size_t first = stem.find('-');
      const std::string session =
          stem.substr(0, first == std::string::npos ? std::string::npos : stem.find('-', first + 1));
      rows.push_back({"slurp-" + stem, fs::absolute(audio), *text, "slurp:" + session + ":human", 0.0,
                      "intent_test", label});
      intents[label] = {scenario, action};
    }
  }
  keep_checked_rows(part, std::move(rows), o);
  // The classes: every intent of a kept row (one never heard cannot be scored).
  std::map<std::string, bool> heard;
  for (const ImportRow& r : part.rows) heard[r.label] = true;
  ImportTable t{"intents.tsv", {"label", "scenario", "name", "description"}, {}};
  for (const auto& [label, sa] : intents) {
    if (!heard.count(label)) continue;
    const auto [name, description] = slurp_intent_text(sa.first, sa.second);
    t.rows.push_back({label, sa.first, name, description});
  }
  part.tables.push_back(std::move(t));
  return part;
}

}  // namespace cw::data
