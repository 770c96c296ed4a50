// core/json_read.h: the nesting limit, bounded values in messages, and the typed reads that turn
// a missing key or a wrong type into one cw::Error naming the file, the key path and what was
// expected.
#include "core/json_read.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace cw {
namespace {

namespace fs = std::filesystem;

// The message of the cw::Error `fn` throws ("" and a test failure when it throws none).
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no cw::Error thrown";
  return "";
}

void expect_has(const std::string& message, const std::vector<std::string>& parts) {
  for (const auto& p : parts) EXPECT_NE(message.find(p), std::string::npos) << message << "\n  lacks: " << p;
}

std::string nested_arrays(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// Reproducer: 300,000 nested arrays used to overflow the stack (a later copy, comparison or
// dump() recursed once per level). Refused at parse time, naming the file.
TEST(JsonRead, DeepNestingIsRefused) {
  const fs::path file = fs::temp_directory_path() / ("cw_json_deep_" + std::to_string(::getpid()) + ".json");
  std::ofstream(file) << "{\"extra\": " << nested_arrays(300000) << "}";
  const std::string m = error_of([&] { read_json_file(file); });
  fs::remove(file);
  expect_has(m, {file.string(), "nested deeper than 64 levels"});
  // The limit itself is accepted.
  EXPECT_NO_THROW(parse_json(nested_arrays(kMaxJsonDepth), "x"));
  EXPECT_NE(error_of([&] { parse_json(nested_arrays(kMaxJsonDepth + 1), "x"); }), "");
}

// Wide documents parse in one linear pass: nlohmann's callback parser (the obvious way to see the
// depth) rescans the enclosing array each time an object in it closes, quadratic in its length.
TEST(JsonRead, WideDocumentsParse) {
  std::string wide = "[";
  for (int i = 0; i < 200000; ++i) wide += "{\"a\": [1]},";
  wide.back() = ']';
  EXPECT_EQ(parse_json(wide, "wide.json").size(), 200000u);
}

TEST(JsonRead, MalformedAndMissingFilesNameTheFile) {
  expect_has(error_of([] { parse_json("{\"a\": tru", "cfg.json"); }), {"cfg.json: not valid JSON"});
  // The parser quotes the bad token: the message stays short however long the token is.
  const std::string m = error_of([] { parse_json("\"" + std::string(100000, 'x') + "\x01\"", "cfg.json"); });
  EXPECT_LT(m.size(), 400u) << m.size();
  expect_has(error_of([] { read_json_file("/no/such/dir/config.json"); }),
             {"/no/such/dir/config.json", "cannot open"});
  // Not a regular file: never read until memory runs out.
  expect_has(error_of([] { read_json_file("/dev/zero", "cfg.json"); }), {"cfg.json: cannot open"});
}

TEST(JsonRead, ShowIsBounded) {
  EXPECT_EQ(json_show(Json(3)), "3");
  EXPECT_EQ(json_show(Json("ab")), "\"ab\"");
  EXPECT_EQ(json_show(Json(std::string(1000, 'y'))), "\"" + std::string(80, 'y') + "...\"");
  EXPECT_EQ(json_show(Json::array({1, 2, 3})), "an array of 3 values");
  EXPECT_EQ(json_show(Json::object({{"k", 1}})), "an object with 1 keys");
  // Cut inside a two-byte character: still printable, no exception.
  EXPECT_NO_THROW(json_show(Json(std::string(79, 'a') + "\xc3\xa9")));
}

TEST(JsonRead, TypedReadsNameTheKeyPath) {
  const Json j = parse_json(
      R"({"model": {"hidden_size": "768", "layers": 4, "eps": 1e-5, "act": "gelu", "names": ["a", 3]},
          "big": 18446744073709551615, "huge": 1e300, "neg": -2, "none": null, "flag": true})",
      "config.json");
  const JsonReader r(j, "config.json");
  EXPECT_EQ(r.get<int64_t>("neg"), -2);
  EXPECT_EQ(r.at("model").get<int64_t>("layers"), 4);
  EXPECT_DOUBLE_EQ(r.at("model").get<double>("eps"), 1e-5);
  EXPECT_DOUBLE_EQ(r.at("model").get<double>("layers"), 4.0);  // an integer is a number
  EXPECT_EQ(r.at("model").get<std::string>("act"), "gelu");
  EXPECT_EQ(r.get<uint64_t>("big"), 18446744073709551615ull);
  EXPECT_TRUE(r.get<bool>("flag"));
  EXPECT_FALSE(r.has("none"));
  EXPECT_FALSE(r.has("absent"));
  EXPECT_EQ(r.get_or<int64_t>("none", 7), 7);
  EXPECT_EQ(r.at("model").get_or<int64_t>("layers", 7), 4);

  expect_has(error_of([&] { r.at("model").get<int64_t>("hidden_size"); }),
             {"config.json: key 'model.hidden_size': expected a 64-bit integer, found \"768\""});
  expect_has(error_of([&] { r.at("model").get<int64_t>("heads"); }),
             {"config.json: key 'model.heads' is missing"});
  expect_has(error_of([&] { r.at("model").get<std::vector<std::string>>("names"); }),
             {"key 'model.names[1]': expected a string, found 3"});
  expect_has(error_of([&] { r.get<int64_t>("big"); }), {"key 'big': expected a 64-bit integer"});
  expect_has(error_of([&] { r.get<uint64_t>("neg"); }), {"key 'neg': expected a non-negative integer"});
  expect_has(error_of([&] { r.get<int64_t>("flag"); }), {"expected a 64-bit integer, found true"});
  expect_has(error_of([&] { r.at("model").at("act").get<std::string>("x"); }),
             {"key 'model.act': expected an object, found \"gelu\""});
  expect_has(error_of([&] { r.get<std::vector<int64_t>>("model"); }),
             {"key 'model': expected an array, found an object with 5 keys"});
  expect_has(error_of([&] { r.get<float>("huge"); }), {"expected a number in float range"});
  // At the root there is no key to name.
  const Json arr = parse_json("[1]", "list.json");
  expect_has(error_of([&] { JsonReader(arr, "list.json").get<int64_t>("a"); }),
             {"list.json: expected an object, found an array of 1 values"});
  expect_has(error_of([&] { JsonReader(arr, "list.json").at(size_t{4}); }),
             {"list.json: key '[4]' is missing (the array has 1 values)"});
}

}  // namespace
}  // namespace cw
