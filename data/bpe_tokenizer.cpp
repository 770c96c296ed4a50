// The byte-level BPE tokenizer (see bpe_tokenizer.h). References: tokenizers 0.19
// (pre_tokenizers/byte_level.rs, models/bpe/word.rs, added_vocabulary.rs, decoders via
// byte_level.rs) and GPT-2's encoder.py, whose byte table and merge loop tokenizers reproduces.
#include "data/bpe_tokenizer.h"

#include <utf8proc.h>

#include <array>
#include <fstream>
#include <limits>
#include <map>

#include "core/error.h"
#include "core/json_read.h"
#include "data/unicode.h"

namespace cw::data {
namespace {

namespace fs = std::filesystem;
using json = Json;

// GPT-2's bytes_to_unicode: the printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
// themselves, the other 68 (controls, space, NBSP, soft hyphen) for U+0100, U+0101, ... in byte
// order, so that every token is printable text with no space in it (space is 'Ġ', U+0120).
struct ByteTable {
  std::array<std::string, 256> to_char;  // byte -> its character, UTF-8
  std::unordered_map<char32_t, uint8_t> to_byte;
  ByteTable() {
    char32_t extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t c = printable ? char32_t(b) : extra++;
      unicode::append_utf8(to_char[b], c);
      to_byte[c] = static_cast<uint8_t>(b);
    }
  }
};

const ByteTable& byte_table() {
  static const ByteTable table;
  return table;
}

// The bytes a token stands for: its characters through the byte table, or, when one of them is
// not in the table (an added token such as "<|ünïcode|>"), its own UTF-8 (tokenizers' ByteLevel
// decoder does the same per token).
std::string token_bytes(const std::string& token) {
  const std::u32string chars = unicode::decode_utf8(token);
  std::string out;
  for (char32_t c : chars) {
    const auto it = byte_table().to_byte.find(c);
    if (it == byte_table().to_byte.end()) return token;
    out.push_back(static_cast<char>(it->second));
  }
  return out;
}

// Appends `bytes` read as UTF-8 the way Rust's String::from_utf8_lossy does (what tokenizers'
// decode returns): valid sequences are copied, and each maximal invalid subpart (a lead byte and
// the continuation bytes that could still complete it, or a lone bad byte) becomes one U+FFFD.
void append_utf8_lossy(std::string& out, std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return k < n && p[k] >= lo && p[k] <= hi;
  };
  size_t i = 0;
  while (i < n) {
    const unsigned b = p[i];
    size_t len = 0, bad = 1;  // a valid sequence's length, else the bytes one U+FFFD replaces
    if (b < 0x80) {
      len = 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      if (cont(i + 1)) len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {  // E0: no overlong forms; ED: no surrogates
      if (cont(i + 1, b == 0xE0 ? 0xA0 : 0x80, b == 0xED ? 0x9F : 0xBF)) {
        bad = 2;
        if (cont(i + 2)) len = 3;
      }
    } else if (b >= 0xF0 && b <= 0xF4) {  // F0: no overlong forms; F4: nothing past U+10FFFF
      if (cont(i + 1, b == 0xF0 ? 0x90 : 0x80, b == 0xF4 ? 0x8F : 0xBF)) {
        bad = 2;
        if (cont(i + 2)) {
          bad = 3;
          if (cont(i + 3)) len = 4;
        }
      }
    }
    if (len > 0) {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i += bad;
    }
  }
}

// The character classes of GPT-2's pattern. \s is Oniguruma's: Unicode White_Space (checked
// against tokenizers code point by code point, U+0085, U+00A0 and U+3000 included, U+180E, U+200B
// and U+FEFF not).
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}
bool is_letter(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return true;
    default: return false;
  }
}
bool is_number(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return true;
    default: return false;
  }
}
bool is_other(char32_t c) { return !is_space(c) && !is_letter(c) && !is_number(c); }

// The length of the match of GPT-2's pattern at s[i] (the alternatives in order, first wins):
//   's|'t|'re|'ve|'m|'ll|'d | ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+ | \s+(?!\S) | \s+
// Every character is in one of the classes, so there is always a match of length >= 1.
size_t match_length(std::u32string_view s, size_t i) {
  const size_t n = s.size();
  if (s[i] == U'\'' && i + 1 < n) {
    const char32_t a = s[i + 1];
    if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
    if (i + 2 < n) {
      const char32_t b = s[i + 2];
      if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
    }
  }
  auto run = [&](size_t from, bool (*in_class)(char32_t)) {
    while (from < n && in_class(s[from])) ++from;
    return from - i;
  };
  const size_t j = s[i] == U' ' ? i + 1 : i;  // the optional leading space
  if (j < n) {
    if (is_letter(s[j])) return run(j, is_letter);
    if (is_number(s[j])) return run(j, is_number);
    if (is_other(s[j])) return run(j, is_other);
  }
  // White space. \s+(?!\S) backtracks off the last character of a run that a non-space follows
  // (that character then leads the next piece, e.g. " world"); a run of one there is \s+.
  const size_t len = run(i, is_space);
  if (i + len == n || len == 1) return len;
  return len - 1;
}

// obj[key]["type"], or "null" when obj[key] is absent or null.
std::string type_of(const json& obj, const char* key) {
  if (!obj.contains(key) || obj[key].is_null()) return "null";
  const json& v = obj[key];
  return v.is_object() && v.contains("type") && v["type"].is_string() ? v["type"].get<std::string>() : "?";
}

bool is_special_form(const std::string& token) {
  return token.size() >= 4 && token.rfind("<|", 0) == 0 && token.compare(token.size() - 2, 2, "|>") == 0;
}

}  // namespace

// ---------------------------------------------------------------- loading
void BpeTokenizer::append(const std::string& token, bool special, const std::string& where) {
  const int64_t id = vocab_size();
  const auto [it, inserted] = ids_.emplace(token, id);
  CW_CHECK(inserted, ValueError, where, ": token '", token, "' has two ids, ", it->second, " and ", id);
  tokens_.push_back(token);
  bytes_.push_back(token_bytes(token));
  special_.push_back(special);
}

BpeTokenizer BpeTokenizer::from_tokenizer_json(const fs::path& file) {
  const std::string where = file.string();
  const json j = read_json_file(file);  // depth-limited; malformed JSON names the file
  CW_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(), ValueError, where,
           ": no 'model' object (not a Hugging Face tokenizers file?)");
  const json& m = j["model"];
  // The pipeline this class implements, and nothing else: Whisper's and GPT-2's.
  CW_CHECK(type_of(j, "model") == "BPE", ValueError, where, ": model type '", type_of(j, "model"),
           "', expected 'BPE'");
  CW_CHECK(type_of(j, "normalizer") == "null", ValueError, where, ": normalizer '", type_of(j, "normalizer"),
           "' is not supported (byte-level BPE without a normalizer)");
  CW_CHECK(type_of(j, "pre_tokenizer") == "ByteLevel", ValueError, where, ": pre_tokenizer '",
           type_of(j, "pre_tokenizer"), "', expected 'ByteLevel'");
  const json& pre = j["pre_tokenizer"];
  CW_CHECK(pre.value("add_prefix_space", false) == false && pre.value("use_regex", true) == true, ValueError,
           where, ": pre_tokenizer ByteLevel needs add_prefix_space false and use_regex true");
  CW_CHECK(type_of(j, "decoder") == "ByteLevel", ValueError, where, ": decoder '", type_of(j, "decoder"),
           "', expected 'ByteLevel'");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    CW_CHECK(!m.contains(key) || m[key].is_null() || m[key] == "", ValueError, where, ": model.", key,
             " is not supported");
  CW_CHECK(!m.contains("byte_fallback") || m["byte_fallback"] == false, ValueError, where,
           ": model.byte_fallback is not supported");
  CW_CHECK(m.contains("vocab") && m["vocab"].is_object() && m.contains("merges") && m["merges"].is_array(),
           ValueError, where, ": model needs a 'vocab' object and a 'merges' array");

  // id -> (token, special): the model's vocabulary, then the added tokens (which may repeat a
  // vocabulary entry, as Whisper's <|endoftext|>, with the same id).
  std::map<int64_t, std::pair<std::string, bool>> entries;
  auto put = [&](int64_t id, const std::string& token, bool special) {
    CW_CHECK(id >= 0 && id < (int64_t(1) << 31), ValueError, where, ": token '", token, "' has id ", id,
             " outside [0, 2^31)");
    const auto [it, inserted] = entries.try_emplace(id, token, special);
    CW_CHECK(inserted || it->second.first == token, ValueError, where, ": id ", id, " is both '",
             it->second.first, "' and '", token, "'");
    it->second.second = it->second.second || special;
  };
  for (const auto& [token, id] : m["vocab"].items()) {
    CW_CHECK(id.is_number_integer(), ValueError, where, ": model.vocab['", token, "'] is not an integer id");
    put(id.get<int64_t>(), token, false);
  }
  std::vector<int64_t> added;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    CW_CHECK(j["added_tokens"].is_array(), ValueError, where, ": added_tokens is not an array");
    for (const json& a : j["added_tokens"]) {
      CW_CHECK(a.is_object() && a.contains("id") && a["id"].is_number_integer() && a.contains("content") &&
                   a["content"].is_string() && !a["content"].get<std::string>().empty(),
               ValueError, where, ": an added token lacks an integer 'id' or a non-empty 'content'");
      const std::string content = a["content"].get<std::string>();
      for (const char* flag : {"lstrip", "rstrip", "single_word"})
        CW_CHECK(a.value(flag, false) == false, ValueError, where, ": added token '", content, "' sets ",
                 flag, ", which is not supported");
      put(a["id"].get<int64_t>(), content, a.value("special", false));
      added.push_back(a["id"].get<int64_t>());
    }
  }
  CW_CHECK(!entries.empty(), ValueError, where, ": empty vocabulary");
  CW_CHECK(entries.rbegin()->first + 1 == static_cast<int64_t>(entries.size()), ValueError, where,
           ": ids are not ", "0 ... N-1: ", entries.size(), " tokens, largest id ", entries.rbegin()->first);
  BpeTokenizer t;
  t.source_ = where;
  for (const auto& [id, e] : entries) t.append(e.first, e.second, where);
  t.added_ = added;
  for (int b = 0; b < 256; ++b)
    CW_CHECK(t.ids_.count(byte_table().to_char[b]), ValueError, where,
             ": the vocabulary lacks the token of byte ", b, " ('", byte_table().to_char[b],
             "'), which byte-level BPE needs");

  // Merges, "left right" (tokenizers <= 0.19) or ["left", "right"] (0.20 on), in rank order.
  const json& merges = m["merges"];
  t.ranks_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const json& mg = merges[r];
    std::string left, right;
    if (mg.is_string()) {
      const std::string s = mg.get<std::string>();
      const size_t sp = s.find(' ');
      CW_CHECK(
          sp != std::string::npos && sp > 0 && sp + 1 < s.size() && s.find(' ', sp + 1) == std::string::npos,
          ValueError, where, ": merge ", r, " '", s, "' is not two tokens separated by one space");
      left = s.substr(0, sp), right = s.substr(sp + 1);
    } else {
      CW_CHECK(mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string(), ValueError, where,
               ": merge ", r, " is neither \"left right\" nor [\"left\", \"right\"]");
      left = mg[0].get<std::string>(), right = mg[1].get<std::string>();
      CW_CHECK(left.find(' ') == std::string::npos && right.find(' ') == std::string::npos, ValueError, where,
               ": merge ", r, " has a space inside a token");
    }
    for (const std::string& part : {left, right, left + right})
      CW_CHECK(t.ids_.count(part), ValueError, where, ": merge ", r, " ('", left, "', '", right, "') uses '",
               part, "', which is not in the vocabulary");
    t.ranks_.emplace(left + " " + right, static_cast<int64_t>(r));  // a repeated merge keeps its first rank
  }
  t.can_encode_ = true;
  return t;
}

BpeTokenizer BpeTokenizer::from_vocabulary_txt(const fs::path& file) {
  const std::string where = file.string();
  std::ifstream in(file, std::ios::binary);
  CW_CHECK(in.good(), Error, "cannot read '", where, "'");
  BpeTokenizer t;
  t.source_ = where;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    CW_CHECK(!line.empty(), ValueError, where, ": line ", line_no,
             " is empty (one token per line, id = line - 1)");
    t.append(line, is_special_form(line), where);
  }
  CW_CHECK(t.vocab_size() > 0, ValueError, where, ": no tokens");
  return t;
}

void BpeTokenizer::extend(const BpeTokenizer& more) {
  const int64_t shared = std::min(vocab_size(), more.vocab_size());
  for (int64_t id = 0; id < shared; ++id)
    CW_CHECK(tokens_[id] == more.tokens_[id], ValueError, source_, " and ", more.source_, " disagree at id ",
             id, ": '", tokens_[id], "' vs '", more.tokens_[id], "'");
  for (int64_t id = shared; id < more.vocab_size(); ++id)
    append(more.tokens_[id], more.special_[id], more.source_);
  if (more.vocab_size() > shared) source_ += " + " + more.source_;
}

BpeTokenizer BpeTokenizer::from_dir(const fs::path& dir) {
  const fs::path json_file = dir / "tokenizer.json", txt = dir / "vocabulary.txt";
  if (fs::exists(json_file)) {
    BpeTokenizer t = from_tokenizer_json(json_file);
    if (fs::exists(txt)) t.extend(from_vocabulary_txt(txt));
    return t;
  }
  if (fs::exists(txt)) return from_vocabulary_txt(txt);
  CW_CHECK(false, Error, "'", dir.string(),
           "' holds neither tokenizer.json nor vocabulary.txt (a Whisper folder)");
  return {};
}

// ---------------------------------------------------------------- lookup
std::optional<int64_t> BpeTokenizer::token_to_id(std::string_view token) const {
  const auto it = ids_.find(std::string(token));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

int64_t BpeTokenizer::require_id(std::string_view token) const {
  const auto id = token_to_id(token);
  CW_CHECK(id.has_value(), ValueError, source_, ": no token '", token, "'");
  return *id;
}

const std::string& BpeTokenizer::id_to_token(int64_t id) const {
  CW_CHECK(id >= 0 && id < vocab_size(), IndexError, "BpeTokenizer: id ", id, " outside the vocabulary [0, ",
           vocab_size(), ") of ", source_);
  return tokens_[static_cast<size_t>(id)];
}

bool BpeTokenizer::is_special(int64_t id) const {
  id_to_token(id);  // the range check
  return special_[static_cast<size_t>(id)];
}

// ---------------------------------------------------------------- decoding
std::string BpeTokenizer::decode(std::span<const int64_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int64_t id : ids)
    if (!(skip_special_tokens && is_special(id))) bytes += bytes_[static_cast<size_t>(id)];
  std::string out;
  out.reserve(bytes.size());
  append_utf8_lossy(out, bytes);
  return out;
}

// ---------------------------------------------------------------- encoding
void BpeTokenizer::encode_piece(const std::string& piece, std::vector<int64_t>& out) const {
  std::vector<std::string> symbols;  // byte-level characters, merged step by step
  for (unsigned char b : piece) symbols.push_back(byte_table().to_char[b]);
  while (symbols.size() > 1) {
    // The adjacent pair of lowest rank; all its occurrences merge, left to right (what
    // tokenizers' queue of (rank, position) does too: a merge cannot create its own pair again).
    int64_t best = std::numeric_limits<int64_t>::max();
    size_t at = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = ranks_.find(symbols[i] + " " + symbols[i + 1]);
      if (it != ranks_.end() && it->second < best) best = it->second, at = i;
    }
    if (best == std::numeric_limits<int64_t>::max()) break;
    const std::string left = symbols[at], right = symbols[at + 1];
    std::vector<std::string> merged;
    merged.reserve(symbols.size());
    for (size_t i = 0; i < symbols.size();) {
      if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
        merged.push_back(left + right);
        i += 2;
      } else {
        merged.push_back(std::move(symbols[i++]));
      }
    }
    symbols = std::move(merged);
  }
  for (const std::string& s : symbols) out.push_back(ids_.at(s));  // every merge result is in the vocabulary
}

void BpeTokenizer::encode_stretch(std::string_view text, std::vector<int64_t>& out) const {
  const std::u32string s = unicode::decode_utf8(text);
  for (size_t i = 0; i < s.size();) {
    const size_t len = match_length(s, i);
    encode_piece(unicode::encode_utf8(std::u32string_view(s).substr(i, len)), out);
    i += len;
  }
}

std::vector<int64_t> BpeTokenizer::encode(std::string_view text) const {
  CW_CHECK(
      can_encode_, ValueError, source_,
      ": no BPE merges, so no encoding (vocabulary.txt alone decodes only; encoding reads tokenizer.json)");
  unicode::decode_utf8(text);  // invalid UTF-8 is an error before anything is produced
  std::vector<int64_t> out;
  // Added tokens first: at each position the longest one that starts there (tokenizers'
  // leftmost-longest match); the stretches between them are pre-tokenized and merged.
  size_t stretch = 0;
  for (size_t i = 0; i < text.size();) {
    size_t best_len = 0;
    int64_t best_id = -1;
    for (int64_t id : added_) {
      const std::string& t = tokens_[static_cast<size_t>(id)];
      if (t.size() > best_len && text.compare(i, t.size(), t) == 0) best_len = t.size(), best_id = id;
    }
    if (best_len == 0) {
      ++i;
      continue;
    }
    encode_stretch(text.substr(stretch, i - stretch), out);
    out.push_back(best_id);
    i += best_len;
    stretch = i;
  }
  encode_stretch(text.substr(stretch), out);
  return out;
}

}  // namespace cw::data
