// Parsing of the speech corpus manifests and label tables; see speech_manifest.h.
#include "data/speech_manifest.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <unordered_map>

#include "core/error.h"

namespace cw::data {
namespace {

std::string read_file(const std::filesystem::path& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  CW_CHECK(in.good(), Error, what, ": cannot open ", path.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CW_CHECK(!in.bad(), Error, what, ": cannot read ", path.string());
  return bytes;
}

std::string join(const std::vector<std::string>& xs, const char* sep) {
  std::string out;
  for (size_t i = 0; i < xs.size(); ++i) out += (i ? sep : "") + xs[i];
  return out;
}

// A UTF-8 byte-order mark (some editors add one) is not part of the first column's name.
void strip_bom(std::string& text) {
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
}

}  // namespace

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

std::vector<std::string> split_tab_fields(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return fields;
    start = tab + 1;
  }
}

uint64_t fnv1a64(const void* data, size_t size, uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

const std::vector<std::string>& SpeechManifest::columns() {
  static const std::vector<std::string> kColumns = {"id",       "audio", "transcript", "voice",
                                                    "duration", "split", "label"};
  return kColumns;
}

SpeechManifest SpeechManifest::read(const std::filesystem::path& tsv) {
  SpeechManifest m;
  m.path_ = tsv;
  std::string text = read_file(tsv, "SpeechManifest");
  m.content_hash_ = fnv1a64(text.data(), text.size());
  strip_bom(text);
  const std::vector<std::string> lines = split_lines(text);
  const std::string where = tsv.string();
  CW_CHECK(!lines.empty(), ValueError, "SpeechManifest: ", where, " is empty (expected the header line '",
           join(columns(), "\\t"), "')");
  CW_CHECK(split_tab_fields(lines[0]) == columns(), ValueError, "SpeechManifest: ", where, ":1: bad header '",
           lines[0], "', expected '", join(columns(), "\\t"), "'");

  const std::filesystem::path base = tsv.parent_path();
  std::unordered_map<std::string, int64_t> first_line;  // id -> line where it appeared
  for (size_t n = 1; n < lines.size(); ++n) {
    const std::string& line = lines[n];
    const auto line_no = static_cast<int64_t>(n + 1);
    if (line.empty()) continue;  // a trailing blank line is harmless
    const std::vector<std::string> f = split_tab_fields(line);
    CW_CHECK(f.size() == columns().size(), ValueError, "SpeechManifest: ", where, ":", line_no, ": ",
             f.size(), " columns, expected ", columns().size(), " (", join(columns(), ", "), ")");
    Utterance u;
    u.id = f[0];
    CW_CHECK(!u.id.empty(), ValueError, "SpeechManifest: ", where, ":", line_no, ": empty id");
    CW_CHECK(!f[1].empty(), ValueError, "SpeechManifest: ", where, ":", line_no, ": empty audio path for '",
             u.id, "'");
    const std::filesystem::path audio(f[1]);
    u.audio = audio.is_absolute() ? audio : base / audio;
    u.transcript = f[2];
    u.voice = f[3];
    {
      // strtod rather than stod: no exception type to translate, and trailing junk is detectable.
      const char* s = f[4].c_str();
      char* end = nullptr;
      errno = 0;
      u.duration = std::strtod(s, &end);
      const bool ok = !f[4].empty() && end == s + f[4].size() && errno == 0 && std::isfinite(u.duration) &&
                      u.duration >= 0.0;
      CW_CHECK(ok, ValueError, "SpeechManifest: ", where, ":", line_no, ": bad duration '", f[4], "' for '",
               u.id, "' (expected seconds, a finite number >= 0)");
    }
    u.split = f[5];
    u.label = f[6];
    u.line = line_no;
    const auto [it, fresh] = first_line.emplace(u.id, line_no);
    CW_CHECK(fresh, ValueError, "SpeechManifest: ", where, ":", line_no, ": duplicate id '", u.id,
             "' (first on line ", it->second, ")");
    m.utterances_.push_back(std::move(u));
  }
  return m;
}

const Utterance& SpeechManifest::operator[](int64_t i) const {
  CW_CHECK(i >= 0 && i < size(), IndexError, "SpeechManifest: row ", i, " out of range for ", size(),
           " rows of ", path_.string());
  return utterances_[static_cast<size_t>(i)];
}

double SpeechManifest::hours() const {
  double seconds = 0.0;
  for (const Utterance& u : utterances_) seconds += u.duration;
  return seconds / 3600.0;
}

int64_t LabelTable::column(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return static_cast<int64_t>(i);
  throw ValueError(detail::cat("LabelTable: ", path.string(), " has no column '", name,
                               "' (columns: ", join(columns, ", "), ")"));
}

const std::string& LabelTable::get(int64_t row, const std::string& column_name) const {
  CW_CHECK(row >= 0 && row < size(), IndexError, "LabelTable: row ", row, " out of range for ", size(),
           " rows of ", path.string());
  return rows[static_cast<size_t>(row)][static_cast<size_t>(column(column_name))];
}

LabelTable read_label_table(const std::filesystem::path& tsv) {
  LabelTable t;
  t.path = tsv;
  std::string text = read_file(tsv, "read_label_table");
  strip_bom(text);
  const std::vector<std::string> lines = split_lines(text);
  CW_CHECK(!lines.empty() && !lines[0].empty(), ValueError, "read_label_table: ", tsv.string(),
           " has no header line");
  t.columns = split_tab_fields(lines[0]);
  for (size_t n = 1; n < lines.size(); ++n) {
    if (lines[n].empty()) continue;
    std::vector<std::string> f = split_tab_fields(lines[n]);
    CW_CHECK(f.size() == t.columns.size(), ValueError, "read_label_table: ", tsv.string(), ":", n + 1, ": ",
             f.size(), " columns, expected ", t.columns.size(), " (", join(t.columns, ", "), ")");
    t.rows.push_back(std::move(f));
  }
  return t;
}

}  // namespace cw::data
