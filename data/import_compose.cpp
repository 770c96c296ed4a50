// Parts -> the corpus folder (see import_compose.h).
#include "data/import_compose.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "data/import_part.h"
#include "data/import_text.h"
#include "data/speech_manifest.h"

namespace cw::data {
namespace fs = std::filesystem;
namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  CW_CHECK(in.good(), Error, "cannot open ", p.string());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Part {
  std::string source;
  fs::path dir;
  std::set<std::string> splits;
};

// Parts with a part.json (a part without one was interrupted and is ignored), by source name.
std::vector<Part> list_parts(const fs::path& corpus) {
  std::vector<Part> parts;
  if (!fs::is_directory(corpus / "parts")) return parts;
  for (const auto& e : fs::directory_iterator(corpus / "parts")) {
    const fs::path json = e.path() / "part.json";
    if (!e.is_directory() || !fs::is_regular_file(json)) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_all(json));
    } catch (const nlohmann::json::exception& x) {
      throw Error(detail::cat(json.string(), ": not valid JSON (", x.what(), "); rerun that import"));
    }
    CW_CHECK(j.is_object() && j.contains("splits") && j["splits"].is_object(), Error, json.string(),
             ": no 'splits' object; rerun that import");
    Part p{e.path().filename().string(), e.path(), {}};
    for (const auto& [split, v] : j["splits"].items()) p.splits.insert(split);
    parts.push_back(std::move(p));
  }
  std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) { return a.source < b.source; });
  return parts;
}

std::vector<ImportRow> rows_of(const fs::path& tsv) {
  std::vector<ImportRow> rows;
  const SpeechManifest m = SpeechManifest::read(tsv);  // named: a range-for over a temporary's member dangles
  for (const Utterance& u : m.utterances())
    rows.push_back({u.id, u.audio, u.transcript, u.voice, u.duration, u.split, u.label});
  return rows;
}

// features/ and text_embeddings/ of a variant composition point at the first folder's.
void link_caches(const fs::path& from, const fs::path& out) {
  for (const char* name : {"features", "text_embeddings"}) {
    const fs::path target = fs::absolute(from) / name, link = out / name;
    std::error_code ec;
    if (fs::exists(fs::symlink_status(link, ec))) continue;
    fs::create_directories(target);
    fs::create_directory_symlink(target, link, ec);
    CW_CHECK(!ec, Error, "cannot link ", link.string(), " to ", target.string(), ": ", ec.message());
  }
}

}  // namespace

ComposeResult compose_corpus(const ComposeOptions& o) {
  const fs::path from = o.from.empty() ? o.out : o.from;
  CW_CHECK(o.intent == "auto" || o.intent == "slurp" || o.intent == "fsc", Error,
           "compose: the intent test must be slurp, fsc or auto, got '", o.intent, "'");
  fs::create_directories(o.out);
  const fs::path record = o.out / "corpus.json";
  if (fs::exists(record)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_all(record));
    } catch (const nlohmann::json::exception&) {
    }
    CW_CHECK(j.is_object() && j.value("imported", false), Error, o.out.string(),
             " holds a corpus made by tools/make_speech_corpus.py (its corpus.json has no 'imported'); "
             "import into "
             "another folder");
  }
  // Incomplete from here until the record is written again, last.
  fs::remove(record);
  if (fs::absolute(from) != fs::absolute(o.out)) link_caches(from, o.out);

  const std::vector<Part> parts = list_parts(from);
  ComposeResult r;
  std::map<std::string, std::vector<ImportRow>> splits;
  std::map<std::string, std::map<std::string, int64_t>> sources;  // split -> source -> rows
  for (const char* split : {"train", "valid", "retrieval_test"})
    for (const Part& p : parts)
      if (p.splits.count(split)) {
        auto rows = rows_of(p.dir / (std::string(split) + ".tsv"));
        sources[split][p.source] = static_cast<int64_t>(rows.size());
        splits[split].insert(splits[split].end(), rows.begin(), rows.end());
      }
  // One right answer per retrieval query: a sentence read twice (two speakers, two corpora) once.
  int64_t repeats = 0;
  {
    std::set<std::string> seen;
    std::vector<ImportRow> once;
    for (ImportRow& row : splits["retrieval_test"])
      if (seen.insert(sentence_key(row.transcript)).second)
        once.push_back(std::move(row));
      else
        ++repeats;
    splits["retrieval_test"] = std::move(once);
  }
  auto find_part = [&](const std::string& source) -> const Part* {
    for (const Part& p : parts)
      if (p.source == source) return &p;
    return nullptr;
  };
  const Part* intent = nullptr;
  if (o.intent == "auto")
    intent = find_part("slurp") ? find_part("slurp") : find_part("fsc");
  else
    intent = find_part(o.intent);
  const Part* kws = find_part("speech_commands");
  std::map<std::string, std::string> tables;  // file -> text
  if (intent && intent->splits.count("intent_test")) {
    splits["intent_test"] = rows_of(intent->dir / "intent_test.tsv");
    sources["intent_test"][intent->source] = static_cast<int64_t>(splits["intent_test"].size());
    tables["intents.tsv"] = read_all(intent->dir / "intents.tsv");
  }
  if (kws && kws->splits.count("kws_test")) {
    splits["kws_test"] = rows_of(kws->dir / "kws_test.tsv");
    sources["kws_test"]["speech_commands"] = static_cast<int64_t>(splits["kws_test"].size());
    tables["keywords.tsv"] = read_all(kws->dir / "keywords.tsv");
  }

  const std::map<std::string, std::string> hint = {
      {"train", "import librispeech or common_voice"},
      {"valid", "import librispeech (dev-clean) or common_voice (dev.tsv)"},
      {"retrieval_test", "import librispeech (test-clean)"},
      {"intent_test", o.intent == "auto" ? "import slurp or fsc" : "import " + o.intent},
      {"kws_test", "import speech_commands"}};
  std::ostringstream text;
  nlohmann::json js = nlohmann::json::object();
  double total_seconds = 0.0;
  int64_t total_rows = 0;
  char hours[32];
  for (const char* split : {"train", "valid", "retrieval_test", "intent_test", "kws_test"}) {
    const std::vector<ImportRow>& rows = splits[split];
    if (rows.empty()) {
      r.missing.push_back(std::string(split) + " (" + hint.at(split) + ")");
      continue;
    }
    write_text_if_changed(o.out / (std::string(split) + ".tsv"), manifest_text(rows));
    double seconds = 0.0;
    for (const ImportRow& row : rows) seconds += row.duration;
    total_seconds += seconds;
    total_rows += static_cast<int64_t>(rows.size());
    std::snprintf(hours, sizeof hours, "%.2f", seconds / 3600.0);
    text << "corpus: " << split << ": " << rows.size() << " utterances, " << hours << " h (";
    bool first = true;
    for (const auto& [source, n] : sources[split]) {
      text << (first ? "" : ", ") << source << " " << n;
      first = false;
    }
    text << ")\n";
    js[split] = {{"utterances", rows.size()}, {"hours", seconds / 3600.0}, {"sources", sources[split]}};
  }
  for (const auto& [file, t] : tables) write_text_if_changed(o.out / file, t);
  if (repeats > 0)
    text << "corpus: retrieval_test: " << repeats
         << " repeated sentences dropped (one right answer per query)\n";
  r.complete = r.missing.empty();
  if (r.complete) {
    nlohmann::json part_names = nlohmann::json::array();
    for (const Part& p : parts) part_names.push_back(p.source);
    const nlohmann::json j = {{"imported", true},
                              {"version", 1},
                              {"size", "imported"},
                              {"parts_from", fs::absolute(from).string()},
                              {"parts", part_names},
                              {"intent_source", intent->source},
                              {"keyword_source", "speech_commands"},
                              {"splits", js},
                              {"retrieval_repeats_dropped", repeats},
                              {"total_utterances", total_rows},
                              {"total_hours", total_seconds / 3600.0}};
    write_text_if_changed(record, j.dump(2) + "\n");
    text << "corpus: complete: " << o.out.string() << " (train --data.corpus " << o.out.string() << ")\n";
  } else {
    text << "corpus: not complete yet, missing:";
    for (const std::string& m : r.missing) text << " " << m << ";";
    text << "\n";
  }
  r.text = text.str();
  return r;
}

}  // namespace cw::data
