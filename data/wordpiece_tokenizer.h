// BERT WordPiece tokenizer: a port of Hugging Face transformers' (slow, Python) BertTokenizer,
// id for id, for the text tower (MiniLM / BERT). Reads a model folder's vocab.txt and
// tokenizer_config.json; encodes text to ids with [CLS]/[SEP] and batches to (B, T) tensors. Part of data/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace cw::data {

// The tokenizer_config.json fields that change what comes out; the defaults are BertTokenizer's.
struct WordPieceConfig {
  bool do_lower_case = true;
  bool tokenize_chinese_chars = true;
  // null in the config (the default): strip accents exactly when lower-casing (HF's rule).
  std::optional<bool> strip_accents;
  // Longest input a model takes, in tokens with [CLS] and [SEP]; HF's "no limit" when absent.
  int64_t model_max_length = std::numeric_limits<int64_t>::max();
  int64_t max_input_chars_per_word = 100;  // longer words become [UNK] (WordpieceTokenizer)
  std::string unk_token = "[UNK]", sep_token = "[SEP]", pad_token = "[PAD]", cls_token = "[CLS]",
              mask_token = "[MASK]";
};

enum class Padding {
  Longest,    // pad to the longest sequence of the batch (HF padding="longest")
  MaxLength,  // pad every sequence to max_length (HF padding="max_length")
};

struct EncodeOptions {
  bool add_special_tokens = true;  // [CLS] ... [SEP]
  bool truncation = true;          // cut to max_length (HF truncation=True on one sequence)
  // Length limit with the special tokens; 0 means the config's model_max_length.
  int64_t max_length = 0;
  Padding padding = Padding::Longest;
};

// A padded batch, as a Hugging Face tokenizer returns it with return_tensors="pt".
struct BatchEncoding {
  Tensor input_ids;       // i64 (B, T), padded with [PAD]'s id
  Tensor attention_mask;  // i64 (B, T), 1 on tokens, 0 on padding
  Tensor token_type_ids;  // i64 (B, T), zeros (one segment)
};

class WordPieceTokenizer {
 public:
  // From a model folder: vocab.txt (required) and tokenizer_config.json (optional). Throws
  // cw::Error naming the path when the folder or vocab.txt is missing or a file is malformed.
  static WordPieceTokenizer from_dir(const std::filesystem::path& dir);
  // From a vocab file and an explicit config.
  static WordPieceTokenizer from_vocab_file(const std::filesystem::path& vocab_file,
                                            WordPieceConfig config = {});
  // From tokens in id order (id = position), e.g. for tests.
  WordPieceTokenizer(const std::vector<std::string>& tokens, WordPieceConfig config = {});

  // Word pieces of text, without [CLS]/[SEP] (HF tokenizer.tokenize(text)). Text is UTF-8;
  // invalid UTF-8 throws cw::ValueError.
  std::vector<std::string> tokenize(std::string_view text) const;
  // Ids of text (HF tokenizer.encode(text, truncation=..., max_length=...)).
  std::vector<int64_t> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Encodes and pads a batch (HF tokenizer(texts, padding=..., truncation=..., max_length=...)).
  BatchEncoding encode_batch(const std::vector<std::string>& texts, const EncodeOptions& options = {}) const;

  // Vocabulary: token_to_id gives unk_id() for an unknown token (HF convert_tokens_to_ids).
  int64_t token_to_id(std::string_view token) const;
  const std::string& id_to_token(int64_t id) const;  // throws cw::IndexError when out of range
  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t mask_id() const { return mask_id_; }
  const WordPieceConfig& config() const { return config_; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Vocab = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

  // BasicTokenizer.tokenize then WordpieceTokenizer.tokenize on one piece of text that holds no
  // special token; appends ids.
  void tokenize_piece(std::u32string_view text, std::vector<int64_t>& ids) const;
  // WordpieceTokenizer on one word: greedy longest match first, "##" on non-initial pieces.
  void wordpiece(std::u32string_view word, std::vector<int64_t>& ids) const;
  // Everything tokenize() and encode() share: ids of text without [CLS]/[SEP].
  std::vector<int64_t> text_to_ids(std::string_view text) const;

  WordPieceConfig config_;
  std::vector<std::u32string> specials_;  // the five special tokens, split out of the text as is
  Vocab vocab_;
  std::vector<std::string> id_to_token_;
  size_t max_token_chars_ = 0;  // longest vocabulary entry, in code points (bounds the search)
  int64_t pad_id_ = 0, unk_id_ = 0, cls_id_ = 0, sep_id_ = 0, mask_id_ = 0;
};

}  // namespace cw::data
