// Manifests of the speech-text corpus (tools/make_speech_corpus.py writes them): one TSV line per
// utterance with its audio file, transcript, voice, duration, split and benchmark label, plus the
// label tables of the zero-shot benchmarks (intents.tsv, keywords.tsv). First stage of the speech
// data path; data/feature_cache.h turns a manifest into log-mel features. Part of data/.
//
// Manifest format (UTF-8, tab separated, '\n' or "\r\n" line ends, no quoting):
//   id  audio  transcript  voice  duration  split  label      <- this exact header
//   utt_000001  audio/train/utt_000001.wav  turn the lights off  espeak:en-us+f3  1.834  train
// audio is relative to the manifest's folder (an absolute path is kept as it is), duration is in
// seconds, label is empty for rows that are not benchmark items. Every malformed input throws
// cw::ValueError naming the file and the 1-based line: a wrong header, a wrong number of columns,
// an empty id or audio path, a duration that is not a finite number >= 0, a duplicate id.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cw::data {

// One manifest row.
struct Utterance {
  std::string id;
  std::filesystem::path audio;  // resolved: the manifest's folder / the audio column
  std::string transcript, voice;
  double duration = 0.0;  // seconds, as the manifest states it (features count real frames)
  std::string split, label;
  int64_t line = 0;  // 1-based line in the manifest, for error messages
};

class SpeechManifest {
 public:
  // The columns of the header line, in order.
  static const std::vector<std::string>& columns();

  // Parses a manifest (see the format above). An empty manifest (header only) is valid.
  static SpeechManifest read(const std::filesystem::path& tsv);

  const std::filesystem::path& path() const { return path_; }
  const std::vector<Utterance>& utterances() const { return utterances_; }
  const Utterance& operator[](int64_t i) const;  // IndexError when out of range
  int64_t size() const { return static_cast<int64_t>(utterances_.size()); }
  // 64-bit FNV-1a of the file's bytes: part of the feature cache's key.
  uint64_t content_hash() const { return content_hash_; }
  // Sum of the stated durations, in hours.
  double hours() const;

 private:
  std::filesystem::path path_;
  std::vector<Utterance> utterances_;
  uint64_t content_hash_ = 0;
};

// A small TSV table with a header line, e.g. intents.tsv (label, scenario, name, description) or
// keywords.tsv (label, keyword). Every row must have as many fields as the header (ValueError
// naming file and line); blank lines are skipped.
struct LabelTable {
  std::filesystem::path path;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;

  int64_t size() const { return static_cast<int64_t>(rows.size()); }
  // Index of a column by name; ValueError naming the file and the known columns when absent.
  int64_t column(const std::string& name) const;
  // rows[row][column(name)]; IndexError for a row out of range.
  const std::string& get(int64_t row, const std::string& column_name) const;
};

LabelTable read_label_table(const std::filesystem::path& tsv);

// The TSV reading the manifests and the label tables share (and the importers' list files use):
// the lines of a text without their '\n' or "\r\n" (a missing final newline is fine), and the
// fields of one tab-separated line (no quoting).
std::vector<std::string> split_lines(const std::string& text);
std::vector<std::string> split_tab_fields(const std::string& line);

// FNV-1a (64-bit) of bytes, continuing from `hash`: a fast, stable, non-cryptographic fingerprint
// for cache keys (collisions are guarded by storing the full key beside the data).
uint64_t fnv1a64(const void* data, size_t size, uint64_t hash = 0xcbf29ce484222325ull);

}  // namespace cw::data
