// Reading JSON that comes from files we do not control (model configs, tokenizer configs,
// checkpoint state, data set indexes, metadata strings): a parse with a nesting limit, and
// JsonReader, which carries the file and the key path so that every missing key or wrong type
// is one error line naming both and saying what was expected. Every error here is a
// cw::ValueError, core/error.h's "bad data file" (not an OptionError). Part of core/.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace cw {

using Json = nlohmann::json;

// The deepest nesting of arrays and objects accepted. nlohmann parses and destroys without
// recursion, but copying, comparing and dump() recurse, so a value nested 300,000 deep would
// overflow the stack later; no file we read nests more than a few levels.
constexpr int kMaxJsonDepth = 64;

// The largest JSON file read_json_file reads (configs are kilobytes, a tokenizer.json megabytes).
constexpr uintmax_t kMaxJsonFileBytes = uintmax_t{256} << 20;

// Parses `text`. `where` names its origin in messages: a file, or e.g. "x.safetensors: metadata
// 'vit_config'". Malformed JSON or nesting deeper than kMaxJsonDepth throws naming it.
Json parse_json(const std::string& text, const std::string& where);
// The same for a whole file; `where` defaults to the file's path. A missing or unreadable file,
// one that is not a regular file, or one over kMaxJsonFileBytes throws too.
Json read_json_file(const std::filesystem::path& file, const std::string& where = "");

// A value as a message shows it: a scalar as written (a string cut to 80 characters), an array or
// an object by its size only. Never the dump() of a whole value: that is unbounded (and recurses).
std::string json_show(const Json& v);

// A view of one value of a parsed document and where it came from. `value` must outlive the
// reader and the readers it hands out (they point into it).
class JsonReader {
 public:
  JsonReader(const Json& value, std::string where, std::string key_path = "")
      : value_(&value), where_(std::move(where)), path_(std::move(key_path)) {}

  const Json& json() const { return *value_; }
  const std::string& where() const { return where_; }

  // An object holding `key` with a non-null value (JSON null reads as absent, as Python's
  // config.get(key) or default does).
  bool has(const std::string& key) const;
  JsonReader at(const std::string& key) const;  // the value must be an object holding `key`
  JsonReader at(size_t index) const;            // the value must be an array this long
  size_t size() const;                          // the value must be an array

  // The value as T: bool, int64_t (a JSON integer), uint64_t (a non-negative one), double or
  // float (any number), std::string, or a std::vector of these (an array, element by element).
  template <class T>
  T get() const;
  template <class T>
  T get(const std::string& key) const {
    return at(key).get<T>();
  }
  // get<int64_t>(key), which must lie in [lo, hi] (a size read from a file, before anything is
  // allocated from it).
  int64_t get_in(const std::string& key, int64_t lo, int64_t hi) const;
  // `fallback` when `key` is absent or null; its type when present.
  template <class T>
  T get_or(const std::string& key, T fallback) const {
    return has(key) ? get<T>(key) : fallback;
  }

  // Throws "<where>: key '<path>': <args>" (no key part at the root).
  template <class... Args>
  [[noreturn]] void fail(const Args&... args) const {
    throw ValueError(detail::cat(where_, path_.empty() ? "" : ": key '" + path_ + "'", ": ", args...));
  }
  // fail("expected <expected>, found <the value>") unless ok, e.g. expect(json().is_object(), "an object").
  void expect(bool ok, const char* expected) const {
    if (!ok) fail("expected ", expected, ", found ", json_show(*value_));
  }

 private:
  template <class T>
  struct IsVector : std::false_type {};
  template <class U>
  struct IsVector<std::vector<U>> : std::true_type {};

  const Json* value_;
  std::string where_, path_;
};

template <class T>
T JsonReader::get() const {
  const Json& v = *value_;
  if constexpr (std::is_same_v<T, bool>) {
    expect(v.is_boolean(), "true or false");
    return v.get<bool>();
  } else if constexpr (std::is_same_v<T, int64_t>) {
    expect(v.is_number_integer() && (!v.is_number_unsigned() ||
                                     v.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max())),
           "a 64-bit integer");
    return v.get<int64_t>();
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    expect(v.is_number_unsigned(), "a non-negative integer");
    return v.get<uint64_t>();
  } else if constexpr (std::is_same_v<T, double>) {
    expect(v.is_number(), "a number");
    return v.get<double>();
  } else if constexpr (std::is_same_v<T, float>) {
    expect(v.is_number() && std::abs(v.get<double>()) <= std::numeric_limits<float>::max(),
           "a number in float range");
    return v.get<float>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    expect(v.is_string(), "a string");
    return v.get<std::string>();
  } else {
    static_assert(IsVector<T>::value, "JsonReader::get: unsupported type");
    T out;
    const size_t n = size();
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back(at(i).get<typename T::value_type>());
    return out;
  }
}

}  // namespace cw
