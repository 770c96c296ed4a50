// BERT WordPiece tokenizer: HF transformers' BertTokenizer (tokenization_bert.py and the
// PreTrainedTokenizer.tokenize it inherits, v4.57) ported step for step; each step below names
// the Python function it mirrors. tests/data/tokenizer_test.cpp checks it id for id. Part of data/.
#include "data/wordpiece_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_read.h"
#include "core/ops.h"
#include "data/unicode.h"

namespace cw::data {

namespace fs = std::filesystem;
using unicode::is_python_space;

namespace {

// vocab.txt as transformers' load_vocab reads it: one token per line, id = line number. Python
// opens it in text mode, so "\r\n" and "\r" end lines too.
std::vector<std::string> read_vocab_lines(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  CW_CHECK(in, Error, "WordPieceTokenizer: cannot open vocab file '", file.string(), "'");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n' && text[i] != '\r') continue;
    lines.push_back(text.substr(start, i - start));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

// A special token in tokenizer_config.json is a string or, in newer files, an AddedToken object.
std::string token_field(const JsonReader& j, const char* key, const std::string& fallback) {
  if (!j.has(key)) return fallback;
  const JsonReader v = j.at(key);
  return v.json().is_object() ? v.get<std::string>("content") : v.get<std::string>();
}

WordPieceConfig read_config(const fs::path& file) {
  WordPieceConfig c;
  if (!fs::exists(file)) return c;  // BertTokenizer's defaults, as HF uses without the file
  const Json doc = read_json_file(file, "WordPieceTokenizer: '" + file.string() + "'");
  const JsonReader j(doc, "WordPieceTokenizer: '" + file.string() + "'");
  if (!doc.is_object()) j.fail("expected a JSON object, found ", json_show(doc));
  c.do_lower_case = j.get_or("do_lower_case", c.do_lower_case);
  c.tokenize_chinese_chars = j.get_or("tokenize_chinese_chars", c.tokenize_chinese_chars);
  if (j.has("strip_accents")) c.strip_accents = j.get<bool>("strip_accents");
  // HF writes "no limit" as int(1e30), which is no int64: anything that large (or a float) is
  // the same "no limit" here.
  if (j.has("model_max_length")) {
    const Json& v = doc["model_max_length"];
    if (v.is_number_integer() &&
        (!v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max())))
      c.model_max_length = v.get<int64_t>();
  }
  CW_CHECK(c.model_max_length >= 2, Error, "WordPieceTokenizer: model_max_length ", c.model_max_length,
           " in '", file.string(), "' leaves no room for [CLS] and [SEP]");
  if (j.has("max_input_chars_per_word") && doc["max_input_chars_per_word"].is_number_integer())
    c.max_input_chars_per_word = j.get<int64_t>("max_input_chars_per_word");
  c.unk_token = token_field(j, "unk_token", c.unk_token);
  c.sep_token = token_field(j, "sep_token", c.sep_token);
  c.pad_token = token_field(j, "pad_token", c.pad_token);
  c.cls_token = token_field(j, "cls_token", c.cls_token);
  c.mask_token = token_field(j, "mask_token", c.mask_token);
  // Options that would change the algorithm and that no BERT checkpoint we use sets: refuse them
  // rather than tokenize differently from HF.
  CW_CHECK(j.get_or("do_basic_tokenize", true), NotImplementedError,
           "WordPieceTokenizer: do_basic_tokenize=false in '", file.string(), "' is not supported");
  CW_CHECK(!j.has("never_split") || j.at("never_split").size() == 0, NotImplementedError,
           "WordPieceTokenizer: never_split in '", file.string(), "' is not supported");
  return c;
}

}  // namespace

WordPieceTokenizer WordPieceTokenizer::from_dir(const fs::path& dir) {
  CW_CHECK(fs::is_directory(dir), Error, "WordPieceTokenizer: model folder '", dir.string(),
           "' does not exist (or is not a folder)");
  const fs::path vocab = dir / "vocab.txt";
  CW_CHECK(fs::is_regular_file(vocab), Error, "WordPieceTokenizer: no vocab file '", vocab.string(),
           "' in the model folder");
  return from_vocab_file(vocab, read_config(dir / "tokenizer_config.json"));
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const fs::path& vocab_file, WordPieceConfig config) {
  CW_CHECK(fs::is_regular_file(vocab_file), Error, "WordPieceTokenizer: no vocab file '", vocab_file.string(),
           "'");
  try {
    return WordPieceTokenizer(read_vocab_lines(vocab_file), std::move(config));
  } catch (const ValueError& e) {  // a bad line or a missing special token: name the file too
    throw ValueError(detail::cat(e.what(), " (vocab file '", vocab_file.string(), "')"));
  }
}

WordPieceTokenizer::WordPieceTokenizer(const std::vector<std::string>& tokens, WordPieceConfig config)
    : config_(std::move(config)), id_to_token_(tokens) {
  vocab_.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::u32string chars;
    try {
      chars = unicode::decode_utf8(tokens[i]);
    } catch (const Error& e) {
      throw ValueError(detail::cat("WordPieceTokenizer: vocabulary line ", i + 1, ": ", e.what()));
    }
    max_token_chars_ = std::max(max_token_chars_, chars.size());
    vocab_[tokens[i]] = static_cast<int64_t>(i);  // a repeated token keeps its last id, as in HF's dict
  }
  auto special = [&](const std::string& tok, const char* what) {
    auto it = vocab_.find(tok);
    CW_CHECK(it != vocab_.end(), ValueError, "WordPieceTokenizer: the ", what, " token '", tok,
             "' is not in the vocabulary");
    return it->second;
  };
  unk_id_ = special(config_.unk_token, "unknown");
  cls_id_ = special(config_.cls_token, "classifier");
  sep_id_ = special(config_.sep_token, "separator");
  pad_id_ = special(config_.pad_token, "padding");
  mask_id_ = token_to_id(config_.mask_token);
  for (const auto* tok : {&config_.unk_token, &config_.sep_token, &config_.pad_token, &config_.cls_token,
                          &config_.mask_token}) {
    specials_.push_back(unicode::decode_utf8(*tok));
  }
  CW_CHECK(config_.max_input_chars_per_word >= 1, ValueError,
           "WordPieceTokenizer: max_input_chars_per_word must be positive, got ",
           config_.max_input_chars_per_word);
}

int64_t WordPieceTokenizer::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? unk_id_ : it->second;
}

const std::string& WordPieceTokenizer::id_to_token(int64_t id) const {
  CW_CHECK(id >= 0 && id < vocab_size(), IndexError, "WordPieceTokenizer: id ", id, " out of range for a ",
           vocab_size(), "-token vocabulary");
  return id_to_token_[static_cast<size_t>(id)];
}

std::vector<int64_t> WordPieceTokenizer::text_to_ids(std::string_view utf8) const {
  const std::u32string text = unicode::decode_utf8(utf8);
  // The longest special token starting at i, or null.
  auto special_at = [&](const std::u32string& s, size_t i) -> const std::u32string* {
    const std::u32string* best = nullptr;
    for (const auto& sp : specials_) {
      if (!sp.empty() && s.compare(i, sp.size(), sp) == 0 && (!best || sp.size() > best->size())) best = &sp;
    }
    return best;
  };

  // PreTrainedTokenizer.tokenize, when do_lower_case: every character outside special tokens is
  // lower-cased on its own (re.sub with "(.+?)"), before anything else. One character at a time
  // means no Final_Sigma rule: "ΟΔΟΣ" becomes "οδοσ", not "οδος". BasicTokenizer's own
  // token.lower() later is then a no-op (lower is idempotent after NFC, checked over all code points).
  std::u32string lowered;
  if (config_.do_lower_case) {
    lowered.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (const auto* sp = special_at(text, i)) {
        lowered += *sp;
        i += sp->size();
      } else {
        unicode::append_lower(lowered, text[i++]);
      }
    }
  } else {
    lowered = text;
  }

  // Then the added-tokens trie splits out the special tokens, which map to their ids untouched;
  // the text between them goes through _tokenize (BasicTokenizer + WordpieceTokenizer).
  std::vector<int64_t> ids;
  size_t piece_start = 0;
  for (size_t i = 0; i < lowered.size();) {
    if (const auto* sp = special_at(lowered, i)) {
      tokenize_piece(std::u32string_view(lowered).substr(piece_start, i - piece_start), ids);
      ids.push_back(token_to_id(unicode::encode_utf8(*sp)));
      i += sp->size();
      piece_start = i;
    } else {
      ++i;
    }
  }
  tokenize_piece(std::u32string_view(lowered).substr(piece_start), ids);
  return ids;
}

void WordPieceTokenizer::tokenize_piece(std::u32string_view text, std::vector<int64_t>& ids) const {
  // BasicTokenizer._clean_text: drop NUL, U+FFFD and control characters (category C*, which
  // includes format characters such as ZWJ, soft hyphen and BOM, and unassigned code points);
  // any whitespace (incl. \t \n \r and Zs like NBSP) becomes a space. \v and \f are Cc, so they
  // vanish rather than separate words, as in HF.
  // BasicTokenizer._tokenize_chinese_chars: spaces around each CJK ideograph, so each is a word.
  std::u32string cleaned;
  cleaned.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || unicode::is_bert_control(c)) continue;
    if (unicode::is_bert_whitespace(c)) {
      cleaned.push_back(U' ');
    } else if (config_.tokenize_chinese_chars && unicode::is_cjk_ideograph(c)) {
      cleaned.push_back(U' ');
      cleaned.push_back(c);
      cleaned.push_back(U' ');
    } else {
      cleaned.push_back(c);
    }
  }
  // "prevents treating the same character with different unicode codepoints as different
  // characters" (HF): NFC before splitting.
  const std::u32string normalized = unicode::nfc(cleaned);
  const bool strip = config_.strip_accents.value_or(config_.do_lower_case);

  // whitespace_tokenize (str.split(): Python whitespace, so U+2028/U+2029, which are not Zs and
  // survive _clean_text, split too), then per token: lower case (already done, see text_to_ids),
  // _run_strip_accents (NFD, drop Mn), _run_split_on_punc (each punctuation character is its own
  // word) and the final whitespace_tokenize (drops empty words).
  std::u32string word;
  auto flush = [&] {
    if (!word.empty()) wordpiece(word, ids);
    word.clear();
  };
  size_t i = 0;
  while (i < normalized.size()) {
    while (i < normalized.size() && is_python_space(normalized[i])) ++i;
    size_t j = i;
    while (j < normalized.size() && !is_python_space(normalized[j])) ++j;
    if (j == i) break;
    std::u32string token(normalized.substr(i, j - i));
    if (strip) {
      std::u32string kept;
      for (char32_t c : unicode::nfd(token)) {
        if (!unicode::is_nonspacing_mark(c)) kept.push_back(c);
      }
      token = std::move(kept);
    }
    for (char32_t c : token) {
      if (unicode::is_bert_punctuation(c)) {
        flush();
        word.push_back(c);
        flush();
      } else if (is_python_space(c)) {
        flush();
      } else {
        word.push_back(c);
      }
    }
    flush();
    i = j;
  }
}

void WordPieceTokenizer::wordpiece(std::u32string_view word, std::vector<int64_t>& ids) const {
  // WordpieceTokenizer.tokenize: a word longer than max_input_chars_per_word (in code points) is
  // [UNK]; otherwise take the longest vocabulary prefix, then the longest "##"-prefixed entry
  // for the rest, and so on; a position where nothing matches makes the whole word [UNK].
  if (static_cast<int64_t>(word.size()) > config_.max_input_chars_per_word) {
    ids.push_back(unk_id_);
    return;
  }
  // UTF-8 byte offset of each code point, so candidate pieces are substrings of one encoding.
  std::string utf8;
  std::vector<size_t> offset;
  offset.reserve(word.size() + 1);
  for (char32_t c : word) {
    offset.push_back(utf8.size());
    unicode::append_utf8(utf8, c);
  }
  offset.push_back(utf8.size());

  const size_t first = ids.size();
  std::string candidate;
  size_t start = 0;
  while (start < word.size()) {
    // No vocabulary entry is longer than max_token_chars_, so longer candidates cannot match.
    size_t end = std::min(word.size(), start + max_token_chars_);
    int64_t found = -1;
    for (; end > start; --end) {
      candidate.assign(start > 0 ? "##" : "");
      candidate.append(utf8, offset[start], offset[end] - offset[start]);
      auto it = vocab_.find(candidate);
      if (it != vocab_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {
      ids.resize(first);
      ids.push_back(unk_id_);
      return;
    }
    ids.push_back(found);
    start = end;
  }
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (int64_t id : text_to_ids(text)) out.push_back(id_to_token(id));
  return out;
}

std::vector<int64_t> WordPieceTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int64_t> body = text_to_ids(text);
  const int64_t specials = options.add_special_tokens ? 2 : 0;
  if (options.truncation) {
    const int64_t limit = options.max_length > 0 ? options.max_length : config_.model_max_length;
    CW_CHECK(limit >= specials, ValueError, "WordPieceTokenizer::encode: max_length ", limit,
             " leaves no room for [CLS] and [SEP]");
    // Truncation keeps the first tokens (HF truncation_side="right"). HF refuses (logs an error
    // and returns the sequence untruncated) when that leaves no text token; we return [CLS] [SEP].
    if (static_cast<int64_t>(body.size()) > limit - specials)
      body.resize(static_cast<size_t>(limit - specials));
  }
  if (!options.add_special_tokens) return body;
  std::vector<int64_t> ids;
  ids.reserve(body.size() + 2);
  ids.push_back(cls_id_);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(sep_id_);
  return ids;
}

BatchEncoding WordPieceTokenizer::encode_batch(const std::vector<std::string>& texts,
                                               const EncodeOptions& options) const {
  CW_CHECK(!texts.empty(), ValueError, "WordPieceTokenizer::encode_batch: empty batch");
  std::vector<std::vector<int64_t>> seqs;
  seqs.reserve(texts.size());
  size_t longest = 0;
  for (const auto& t : texts) {
    seqs.push_back(encode(t, options));
    longest = std::max(longest, seqs.back().size());
  }
  int64_t T = static_cast<int64_t>(longest);
  if (options.padding == Padding::MaxLength) {
    T = options.max_length > 0 ? options.max_length : config_.model_max_length;
    CW_CHECK(
        T != std::numeric_limits<int64_t>::max(), ValueError,
        "WordPieceTokenizer::encode_batch: padding to max_length needs a max_length (the config sets none)");
    CW_CHECK(static_cast<int64_t>(longest) <= T, ValueError,
             "WordPieceTokenizer::encode_batch: a sequence of ", longest,
             " tokens is longer than max_length ", T, " (turn truncation on)");
  }
  const int64_t B = static_cast<int64_t>(texts.size());
  std::vector<int64_t> input_ids(static_cast<size_t>(B * T), pad_id_);
  std::vector<int64_t> mask(static_cast<size_t>(B * T), 0);
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = seqs[static_cast<size_t>(b)];
    std::copy(s.begin(), s.end(), input_ids.begin() + b * T);
    std::fill_n(mask.begin() + b * T, s.size(), 1);
  }
  BatchEncoding out;
  out.input_ids = ops::from_vector(input_ids, {B, T});  // (B, T)
  out.attention_mask = ops::from_vector(mask, {B, T});  // (B, T)
  out.token_type_ids = ops::zeros({B, T}, DType::I64);  // (B, T)
  return out;
}

}  // namespace cw::data
