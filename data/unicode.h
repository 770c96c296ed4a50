// Unicode helpers for the BERT tokenizer (data/wordpiece_tokenizer.h): a strict UTF-8 codec, the
// character classes of Hugging Face's BasicTokenizer, Python's str.lower() and NFC/NFD. The
// Unicode data (categories, case, decompositions) comes from utf8proc. Part of data/.
#pragma once

#include <string>
#include <string_view>

namespace cw::data::unicode {

// UTF-8 -> code points. Throws cw::ValueError naming the byte offset of the first invalid
// sequence (truncated, overlong, a surrogate or beyond U+10FFFF); embedded NULs are kept.
std::u32string decode_utf8(std::string_view s);
// Code points -> UTF-8 (the code points must be valid scalar values).
std::string encode_utf8(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);

// transformers' tokenization_utils._is_whitespace: ' ', \t, \n, \r and category Zs.
bool is_bert_whitespace(char32_t c);
// _is_control: any category C* (Cc, Cf, Cs, Co and unassigned Cn) except \t, \n, \r.
bool is_bert_control(char32_t c);
// _is_punctuation: every non-alphanumeric ASCII character (so '$', '^', '`' too) and category P*.
bool is_bert_punctuation(char32_t c);
// BasicTokenizer._is_chinese_char: the CJK Unified Ideograph blocks (not kana, not Hangul).
bool is_cjk_ideograph(char32_t c);
// Python's str.isspace(), which str.split() (HF's whitespace_tokenize) splits on.
bool is_python_space(char32_t c);
// Category Mn (non-spacing mark): what HF's _run_strip_accents drops after NFD.
bool is_nonspacing_mark(char32_t c);

// Appends Python's str.lower() of the one-character string c: the full case mapping, whose only
// multi-character lower case is U+0130 -> "i" U+0307. No context, so no Final_Sigma rule: see
// wordpiece_tokenizer.cpp for why one character at a time is what HF does.
void append_lower(std::u32string& out, char32_t c);

// unicodedata.normalize("NFC" / "NFD", s).
std::u32string nfc(std::u32string_view s);
std::u32string nfd(std::u32string_view s);

}  // namespace cw::data::unicode
