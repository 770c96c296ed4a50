// CharVocab, greedy CTC decoding and the character error rate (see char_vocab.h).
#include "train/char_vocab.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"

namespace cw::train {

CharVocab CharVocab::from_transcripts(const std::vector<std::string>& transcripts) {
  bool seen[256] = {};
  for (const std::string& t : transcripts)
    for (const char c : normalize_transcript(t)) seen[static_cast<unsigned char>(c)] = true;
  std::string chars;
  for (int c = 0; c < 256; ++c)
    if (seen[c]) chars.push_back(static_cast<char>(c));
  return from_chars(chars);
}

CharVocab CharVocab::from_chars(const std::string& chars) {
  CharVocab v;
  v.chars_ = chars;
  for (size_t i = 0; i < chars.size(); ++i) {
    int16_t& id = v.id_of_[static_cast<unsigned char>(chars[i])];
    CW_CHECK(id == 0, ValueError, "character vocabulary: '", chars[i], "' appears twice in \"", chars, "\"");
    id = static_cast<int16_t>(i + 1);
  }
  return v;
}

std::vector<int64_t> CharVocab::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const char c : normalize_transcript(text))
    if (const int16_t id = id_of_[static_cast<unsigned char>(c)]) ids.push_back(id);
  return ids;
}

std::string CharVocab::decode_greedy(const Tensor& scores, int64_t frames) const {
  CW_CHECK(scores.dim() == 2 && scores.size(1) == size() && frames >= 0 && frames <= scores.size(0),
           ShapeError, "decode_greedy: scores ", describe(scores), " should be (T, ", size(),
           ") with T >= ", frames);
  const Tensor s = scores.to(DType::F64).contiguous();
  const double* p = s.data<double>();
  const int64_t V = size();
  std::string out;
  int64_t prev = 0;
  for (int64_t t = 0; t < frames; ++t) {
    const int64_t best = std::max_element(p + t * V, p + (t + 1) * V) - (p + t * V);
    if (best != 0 && best != prev) out.push_back(chars_[static_cast<size_t>(best - 1)]);
    prev = best;
  }
  return out;
}

std::string normalize_transcript(const std::string& text) {
  std::string out;
  bool space = false;
  for (const char raw : text) {
    const char c = (raw >= 'A' && raw <= 'Z') ? static_cast<char>(raw - 'A' + 'a') : raw;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'') {
      if (space && !out.empty()) out.push_back(' ');
      out.push_back(c);
      space = false;
    } else {
      space = true;
    }
  }
  return out;
}

double character_error_rate(const std::vector<std::string>& hypotheses,
                            const std::vector<std::string>& references) {
  CW_CHECK(hypotheses.size() == references.size(), ValueError, "character_error_rate: ", hypotheses.size(),
           " hypotheses for ", references.size(), " references");
  int64_t errors = 0, length = 0;
  for (size_t i = 0; i < references.size(); ++i) {
    errors += edit_distance(hypotheses[i], references[i]);
    length += static_cast<int64_t>(references[i].size());
  }
  if (length == 0) return errors == 0 ? 0.0 : 1.0;
  return static_cast<double>(errors) / static_cast<double>(length);
}

namespace {
std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(normalize_transcript(text));
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}
}  // namespace

WordErrors word_errors(const std::vector<std::string>& hypotheses,
                       const std::vector<std::string>& references) {
  CW_CHECK(hypotheses.size() == references.size(), ValueError, "word_errors: ", hypotheses.size(),
           " hypotheses for ", references.size(), " references");
  WordErrors e;
  for (size_t i = 0; i < references.size(); ++i) {
    const auto ref = words_of(references[i]);
    e.errors += sequence_edit_distance(words_of(hypotheses[i]), ref);
    e.words += static_cast<int64_t>(ref.size());
  }
  return e;
}

}  // namespace cw::train
