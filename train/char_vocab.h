// The character vocabulary of the speech tower's recognition pretraining (train --task
// speech_asr): CTC's blank is id 0 and each character of the training transcripts gets the ids
// 1.. in byte order; plus the greedy CTC decoding of a frame sequence and the character error
// rate that the pretraining reports. Transcripts are normalized first (normalize_transcript:
// what is spoken, not how it is written), and a character the vocabulary lacks is dropped from a
// target (and counted by the CER as an error).
// Part of train/.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cw::train {

class CharVocab {
 public:
  CharVocab() = default;
  // The distinct characters of the normalized `transcripts`, sorted.
  static CharVocab from_transcripts(const std::vector<std::string>& transcripts);
  // From the string written by chars() (a tower file's metadata); duplicates are a ValueError.
  static CharVocab from_chars(const std::string& chars);

  const std::string& chars() const { return chars_; }
  int64_t size() const { return static_cast<int64_t>(chars_.size()) + 1; }  // with the blank
  // Ids of the known characters of normalize_transcript(text), in order.
  std::vector<int64_t> encode(const std::string& text) const;
  // Greedy CTC decoding of one utterance: the best class of each of the first `frames` rows of
  // scores (T, size()) f32/f64 on the host, repeats merged, blanks dropped.
  std::string decode_greedy(const Tensor& scores, int64_t frames) const;

 private:
  std::string chars_;
  int16_t id_of_[256] = {};  // byte -> id, 0 = not in the vocabulary
};

// Lower-cases ASCII letters, keeps letters, digits and apostrophes, turns everything else
// (punctuation, symbols) into a space, and collapses and trims spaces: "Wake me up, at 7!" ->
// "wake me up at 7".
std::string normalize_transcript(const std::string& text);

// Levenshtein distance between two sequences (insertions, deletions, substitutions; cost 1
// each): the characters of two strings, or the words of two word lists. One row of the table.
template <class Sequence>
int64_t sequence_edit_distance(const Sequence& a, const Sequence& b) {
  std::vector<int64_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diag = row[0];  // d[i-1][j-1]
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t up = row[j];  // d[i-1][j]
      row[j] = std::min({up + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}
inline int64_t edit_distance(const std::string& a, const std::string& b) {
  return sequence_edit_distance(a, b);
}

// Character error rate: total edit distance over total reference length (0 when both are empty).
double character_error_rate(const std::vector<std::string>& hypotheses,
                            const std::vector<std::string>& references);

// Word error rate: the word-level edit distance of the normalized texts (normalize_transcript:
// case and punctuation do not count; "7" and "seven" do differ) over the reference word count.
struct WordErrors {
  int64_t errors = 0, words = 0;
  double rate() const { return words > 0 ? static_cast<double>(errors) / static_cast<double>(words) : 0.0; }
};
WordErrors word_errors(const std::vector<std::string>& hypotheses,
                       const std::vector<std::string>& references);

}  // namespace cw::train
