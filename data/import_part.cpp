// An importer's output: summary, manifests and part.json of one source (see import_part.h).
#include "data/import_part.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/speech_manifest.h"

namespace cw::data {
namespace fs = std::filesystem;

void ImportSummary::keep(const ImportRow& row) {
  Kept& k = kept[row.split];
  ++k.rows;
  k.seconds += row.duration;
}

void ImportSummary::drop(const std::string& reason, const std::string& example) {
  Dropped& d = dropped[reason];
  ++d.rows;
  if (d.examples.size() < kExamples) d.examples.push_back(example);
}

int64_t ImportSummary::kept_rows() const {
  int64_t n = 0;
  for (const auto& [split, k] : kept) n += k.rows;
  return n;
}

int64_t ImportSummary::dropped_rows() const {
  int64_t n = 0;
  for (const auto& [reason, d] : dropped) n += d.rows;
  return n;
}

std::string ImportSummary::text(const std::string& source) const {
  std::ostringstream s;
  char hours[32];
  s << source << ": kept " << kept_rows() << " rows:";
  for (const auto& [split, k] : kept) {
    std::snprintf(hours, sizeof hours, "%.2f", k.seconds / 3600.0);
    s << " " << split << " " << k.rows << " (" << hours << " h)";
  }
  s << "\n" << source << ": dropped " << dropped_rows() << " rows" << (dropped.empty() ? "" : ":") << "\n";
  for (const auto& [reason, d] : dropped) {
    s << "  " << reason << ": " << d.rows << "\n";
    for (const std::string& e : d.examples) s << "    e.g. " << e << "\n";
  }
  for (const std::string& n : notes) s << source << ": note: " << n << "\n";
  return s.str();
}

fs::path part_dir(const fs::path& out, const std::string& source) { return out / "parts" / source; }

std::string manifest_text(const std::vector<ImportRow>& rows) {
  std::string t;
  for (size_t i = 0; i < SpeechManifest::columns().size(); ++i)
    t += (i ? "\t" : "") + SpeechManifest::columns()[i];
  t += "\n";
  char dur[32];
  for (const ImportRow& r : rows) {
    std::snprintf(dur, sizeof dur, "%.3f", r.duration);
    t += r.id + "\t" + r.audio.string() + "\t" + r.transcript + "\t" + r.voice + "\t" + dur + "\t" + r.split +
         "\t" + r.label + "\n";
  }
  return t;
}

std::string table_text(const ImportTable& table) {
  auto line = [](const std::vector<std::string>& f) {
    std::string l;
    for (size_t i = 0; i < f.size(); ++i) l += (i ? "\t" : "") + f[i];
    return l + "\n";
  };
  std::string t = line(table.columns);
  for (const auto& r : table.rows) t += line(r);
  return t;
}

bool write_text_if_changed(const fs::path& path, const std::string& text) {
  {
    std::ifstream in(path, std::ios::binary);
    if (in.good()) {
      const std::string old((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (old == text) return false;
    }
  }
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  CW_CHECK(!ec, Error, "cannot create folder ", path.parent_path().string(), ": ", ec.message());
  write_file_atomic(path, text);
  return true;
}

void require_file(const fs::path& path, const std::string& what) {
  CW_CHECK(fs::is_regular_file(path), Error, path.string(), ": no such file (", what, ")");
}

void write_part(const ImportPart& part, const fs::path& out) {
  const fs::path dir = part_dir(out, part.source);
  fs::create_directories(dir);
  std::error_code ec;
  fs::remove(dir / "part.json", ec);  // incomplete until written again, last

  std::map<std::string, std::vector<ImportRow>> by_split;
  for (const ImportRow& r : part.rows) by_split[r.split].push_back(r);
  // Splits written by an earlier run with other options and absent now go away (listed first:
  // removing entries while iterating a folder is unspecified).
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const fs::path p = entry.path();
    const bool table = std::any_of(part.tables.begin(), part.tables.end(),
                                   [&](const ImportTable& t) { return t.file == p.filename().string(); });
    if (p.extension() == ".tsv" && p.filename() != "audio_check.tsv" && !table &&
        by_split.count(p.stem().string()) == 0)
      stale.push_back(p);
  }
  for (const fs::path& p : stale) fs::remove(p, ec);
  nlohmann::json splits = nlohmann::json::object();
  for (auto& [split, rows] : by_split) {
    std::sort(rows.begin(), rows.end(), [](const ImportRow& a, const ImportRow& b) { return a.id < b.id; });
    write_text_if_changed(dir / (split + ".tsv"), manifest_text(rows));
    double seconds = 0.0;
    for (const ImportRow& r : rows) seconds += r.duration;
    splits[split] = {{"rows", rows.size()}, {"hours", seconds / 3600.0}};
  }
  nlohmann::json tables = nlohmann::json::array();
  for (const ImportTable& t : part.tables) {
    write_text_if_changed(dir / t.file, table_text(t));
    tables.push_back(t.file);
  }
  nlohmann::json dropped = nlohmann::json::object();
  for (const auto& [reason, d] : part.summary.dropped)
    dropped[reason] = {{"rows", d.rows}, {"examples", d.examples}};
  const nlohmann::json j = {{"version", 1},
                            {"source", part.source},
                            {"root", part.root.string()},
                            {"settings", part.settings},
                            {"splits", splits},
                            {"tables", tables},
                            {"dropped", dropped},
                            {"notes", part.summary.notes}};
  write_text_if_changed(dir / "part.json", j.dump(2) + "\n");
}

}  // namespace cw::data
