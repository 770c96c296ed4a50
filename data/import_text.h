// Text handling shared by the importers of public speech corpora: transcripts made safe for a
// manifest line (valid UTF-8, no tabs or line breaks), the lines and fields of the corpora's own
// list files (TSV, CSV with quotes, JSON lines), and the key under which two transcripts count as
// the same sentence. Part of data/ (see data/import_part.h).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/speech_manifest.h"  // split_lines, split_tab_fields: the manifests' own TSV reading

namespace cw::data {

// A transcript as a manifest holds it: tabs, carriage returns and line breaks become spaces, runs
// of white space one space, no space at either end. std::nullopt with *why set when the text is
// not valid UTF-8 ("transcript not valid UTF-8") or nothing is left ("empty transcript").
std::optional<std::string> clean_transcript(std::string_view raw, std::string* why);

// The lines of a text file without their '\n' / "\r\n" (a UTF-8 byte-order mark at the start is
// dropped). cw::Error naming the file when it cannot be read.
std::vector<std::string> read_lines(const std::filesystem::path& path);

// Fields of one CSV record (RFC 4180: fields in double quotes may hold commas and doubled quotes).
// std::nullopt for an unterminated quote.
std::optional<std::vector<std::string>> split_csv_fields(const std::string& line);

// Lower case (ASCII), punctuation dropped, white space collapsed: two transcripts with one key are
// the same sentence for the retrieval test's one-right-answer rule.
std::string sentence_key(std::string_view transcript);

// Lower-cases ASCII letters only (LibriSpeech's transcripts are upper-case ASCII).
std::string ascii_lower(std::string s);

// The index of each wanted column in a header, cw::Error naming the file and the missing column.
std::vector<size_t> column_indices(const std::vector<std::string>& header,
                                   const std::vector<std::string>& wanted, const std::filesystem::path& file);

}  // namespace cw::data
