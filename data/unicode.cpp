// Unicode helpers of the BERT tokenizer over utf8proc (categories, simple lower case, canonical
// decomposition and composition). utf8proc 2.8 carries Unicode 15.0; Python 3.11's unicodedata
// carries 14.0, so characters new in 15.0 are letters here and "unassigned" there. Part of data/.
#include "data/unicode.h"

#include <utf8proc.h>

#include <vector>

#include "core/error.h"

namespace cw::data::unicode {

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b0 = p[i];
    char32_t c = 0;
    size_t len = 0;
    char32_t min = 0;  // smallest code point allowed for this length (rejects overlong forms)
    if (b0 < 0x80) {
      c = b0, len = 1;
    } else if ((b0 & 0xE0) == 0xC0) {
      c = b0 & 0x1F, len = 2, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      c = b0 & 0x0F, len = 3, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      c = b0 & 0x07, len = 4, min = 0x10000;
    } else {
      throw ValueError(detail::cat("decode_utf8: invalid UTF-8 lead byte 0x", std::hex, int(b0), std::dec,
                                   " at byte ", i));
    }
    CW_CHECK(i + len <= n, ValueError, "decode_utf8: truncated UTF-8 sequence at byte ", i);
    for (size_t k = 1; k < len; ++k) {
      CW_CHECK((p[i + k] & 0xC0) == 0x80, ValueError, "decode_utf8: invalid UTF-8 continuation at byte ",
               i + k);
      c = (c << 6) | (p[i + k] & 0x3F);
    }
    CW_CHECK(c >= min, ValueError, "decode_utf8: overlong UTF-8 sequence at byte ", i);
    CW_CHECK(c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF), ValueError,
             "decode_utf8: UTF-8 sequence at byte ", i, " encodes a surrogate or a value beyond U+10FFFF");
    out.push_back(c);
    i += len;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

namespace {

utf8proc_category_t category(char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)); }

// utf8proc_decompose (which also puts combining marks in canonical order) on the UTF-8 form of
// s; with UTF8PROC_COMPOSE, utf8proc_normalize_utf32 then recomposes. This is what utf8proc_map
// does for NFC/NFD, kept in UTF-32 because the tokenizer works on code points.
std::u32string normalize(std::u32string_view s, utf8proc_option_t options) {
  if (s.empty()) return {};
  const std::string utf8 = encode_utf8(s);
  std::vector<utf8proc_int32_t> buf(s.size() + 16);
  utf8proc_ssize_t len = 0;
  for (;;) {
    len = utf8proc_decompose(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                             static_cast<utf8proc_ssize_t>(utf8.size()), buf.data(),
                             static_cast<utf8proc_ssize_t>(buf.size()), options);
    CW_CHECK(len >= 0, Error, "unicode normalization: ", utf8proc_errmsg(len));
    if (static_cast<size_t>(len) <= buf.size()) break;
    buf.resize(static_cast<size_t>(len));  // too small: utf8proc returned the size it needs
  }
  if (options & UTF8PROC_COMPOSE) {
    len = utf8proc_normalize_utf32(buf.data(), len, options);
    CW_CHECK(len >= 0, Error, "unicode normalization: ", utf8proc_errmsg(len));
  }
  return std::u32string(buf.begin(), buf.begin() + len);
}

}  // namespace

bool is_bert_whitespace(char32_t c) {
  if (c == U' ' || c == U'\t' || c == U'\n' || c == U'\r') return true;
  return category(c) == UTF8PROC_CATEGORY_ZS;
}

bool is_bert_control(char32_t c) {
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN: return true;
    default: return false;
  }
}

bool is_bert_punctuation(char32_t c) {
  // "We treat all non-letter/number ASCII as punctuation" (HF): '$', '+', '^', '`' ... are S*.
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) {
    return true;
  }
  const auto cat = category(c);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool is_cjk_ideograph(char32_t c) {
  // The ranges of HF's _is_chinese_char, as written there (they predate Extensions F-H).
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_python_space(char32_t c) {
  // CPython's _PyUnicode_IsWhitespace: bidirectional class WS, B or S, or category Zs.
  switch (c) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x1C:
    case 0x1D:
    case 0x1E:
    case 0x1F:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_nonspacing_mark(char32_t c) { return category(c) == UTF8PROC_CATEGORY_MN; }

void append_lower(std::u32string& out, char32_t c) {
  // U+0130 is the one character whose full lower case (SpecialCasing.txt, used by Python) is not
  // its simple lower case (UnicodeData.txt, used by utf8proc_tolower); checked over all code
  // points against Python 3.11.
  if (c == 0x130) {
    out.push_back(U'i');
    out.push_back(0x307);
    return;
  }
  out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
}

std::u32string nfc(std::u32string_view s) {
  return normalize(s, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
}

std::u32string nfd(std::u32string_view s) {
  return normalize(s, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
}

}  // namespace cw::data::unicode
