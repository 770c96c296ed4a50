// Byte-level BPE tokenizer (Radford et al. 2019, GPT-2 sec. 2.2), the text side of Whisper: ids ->
// text for transcripts, text -> ids for prompts. A port of Hugging Face `tokenizers` as Whisper's
// tokenizer.json configures it (ByteLevel pre-tokenizer and decoder, BPE model, no normalizer),
// id for id and byte for byte (tests/data/bpe_tokenizer_test.cpp, fixture by
// tools/make_bpe_fixture.py). Part of data/.
//
// Encoding: the special (added) tokens are cut out of the text first, leftmost-longest match; each
// remaining stretch is split by GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (\s is Unicode White_Space, as Oniguruma's, the regex engine of `tokenizers`); each piece's UTF-8
// bytes become printable characters (GPT-2's byte table) and BPE merges them, lowest rank first.
// Decoding maps each token's characters back to bytes (a token with a character outside the table,
// e.g. a non-byte-level added token, gives its own UTF-8), joins them, and reads the bytes as UTF-8
// the way Rust's String::from_utf8_lossy does: each maximal invalid subpart becomes one U+FFFD.
// Ids -> text therefore equals tokenizers' decode exactly, broken multi-byte characters included.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cw::data {

class BpeTokenizer {
 public:
  // A model folder: tokenizer.json (vocabulary, merges, added tokens) when present, extended by
  // vocabulary.txt (CTranslate2's one token per line) when that lists more ids: Whisper's
  // tokenizer.json stops at <|notimestamps|>, its vocabulary.txt goes on with the 1501 timestamp
  // tokens <|0.00|> ... <|30.00|>, which the model can emit. The ids both files list must agree.
  // With vocabulary.txt alone the tokenizer decodes but cannot encode (no merges).
  static BpeTokenizer from_dir(const std::filesystem::path& dir);
  static BpeTokenizer from_tokenizer_json(const std::filesystem::path& file);
  // Decoding only. A line of the form <|...|> is a special token (the only kind vocabulary.txt has).
  static BpeTokenizer from_vocabulary_txt(const std::filesystem::path& file);

  // Text (UTF-8; invalid UTF-8 is a ValueError) -> ids, no special tokens added
  // (tokenizer.encode(text, add_special_tokens=False).ids). Special tokens written in the text
  // keep their ids. Needs the merges (can_encode()).
  std::vector<int64_t> encode(std::string_view text) const;
  // Ids -> text (tokenizer.decode(ids, skip_special_tokens)). An id outside [0, vocab_size()) is
  // an IndexError.
  std::string decode(std::span<const int64_t> ids, bool skip_special_tokens = true) const;

  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  bool can_encode() const { return can_encode_; }
  std::optional<int64_t> token_to_id(std::string_view token) const;
  // The id of a token that must exist (e.g. "<|endoftext|>"); ValueError naming it otherwise.
  int64_t require_id(std::string_view token) const;
  const std::string& id_to_token(int64_t id) const;      // IndexError when out of range
  bool is_special(int64_t id) const;                     // IndexError when out of range
  const std::string& source() const { return source_; }  // the file(s) read, for messages

 private:
  BpeTokenizer() = default;
  // Appends the next id. `where` names the file for the error on a token listed twice.
  void append(const std::string& token, bool special, const std::string& where);
  // Appends vocabulary.txt's ids past ours; the ids both list must hold the same tokens.
  void extend(const BpeTokenizer& more);
  void encode_stretch(std::string_view text, std::vector<int64_t>& out) const;   // no added tokens in it
  void encode_piece(const std::string& piece, std::vector<int64_t>& out) const;  // one pre-token

  std::string source_;
  std::vector<std::string> tokens_;  // id -> token as stored (byte-level characters)
  std::vector<std::string> bytes_;   // id -> the bytes it decodes to
  std::vector<bool> special_;        // id -> skipped by decode(skip_special_tokens)
  std::unordered_map<std::string, int64_t> ids_;
  std::unordered_map<std::string, int64_t> ranks_;  // "left right" -> merge rank (0 first)
  std::vector<int64_t> added_;                      // ids cut out of the text before pre-tokenization
  bool can_encode_ = false;                         // read from tokenizer.json (merges known)
};

}  // namespace cw::data
