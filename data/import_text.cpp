// Transcript cleaning and list-file parsing of the importers (see import_text.h).
#include "data/import_text.h"

#include <fstream>
#include <iterator>

#include "core/error.h"
#include "data/unicode.h"

namespace cw::data {

std::optional<std::string> clean_transcript(std::string_view raw, std::string* why) {
  try {
    (void)unicode::decode_utf8(raw);  // strict: a broken byte would reach the tokenizer otherwise
  } catch (const ValueError&) {
    if (why) *why = "transcript not valid UTF-8";
    return std::nullopt;
  }
  std::string out;
  bool space = false;
  for (const char c : raw) {
    const bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
    if (ws) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  if (out.empty()) {
    if (why) *why = "empty transcript";
    return std::nullopt;
  }
  return out;
}

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  CW_CHECK(in.good(), Error, "cannot open ", path.string());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CW_CHECK(!in.bad(), Error, "cannot read ", path.string());
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  return split_lines(text);
}

std::optional<std::vector<std::string>> split_csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  if (quoted) return std::nullopt;
  return fields;
}

std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string sentence_key(std::string_view transcript) {
  std::string out;
  bool space = false;
  for (const char c : transcript) {
    const auto u = static_cast<unsigned char>(c);
    const bool keep = u >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!keep) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

std::vector<size_t> column_indices(const std::vector<std::string>& header,
                                   const std::vector<std::string>& wanted,
                                   const std::filesystem::path& file) {
  std::vector<size_t> idx;
  for (const std::string& w : wanted) {
    size_t i = 0;
    while (i < header.size() && header[i] != w) ++i;
    CW_CHECK(i < header.size(), Error, file.string(), ":1: no column '", w,
             "' in the header (the importer needs ", wanted.size(),
             " columns of this file; is it the right file?)");
    idx.push_back(i);
  }
  return idx;
}

}  // namespace cw::data
