// JSON from untrusted files (see json_read.h).
#include "core/json_read.h"

#include <fstream>

namespace cw {

namespace {

// nlohmann's parse errors quote the token read so far, which a hostile file can make as long as
// itself.
std::string cut(const std::string& s, size_t n = 200) { return s.size() > n ? s.substr(0, n) + "..." : s; }

// A first pass over the text as SAX events that only counts nesting, so that a too-deep document
// is refused before a DOM of it is built. Not json::parse's callback, which sees the depth too:
// nlohmann's callback parser rescans the enclosing container each time a value in it closes,
// which makes an array of n objects O(n^2).
class DepthCheck : public nlohmann::json_sax<Json> {
 public:
  bool too_deep = false;
  std::string syntax_error;  // nlohmann's message, when the text is no JSON

  bool start_object(std::size_t) override { return open(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool key(string_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    syntax_error = e.what();
    return false;
  }

 private:
  bool open() {
    too_deep = ++depth_ > kMaxJsonDepth;
    return !too_deep;
  }
  bool close() {
    --depth_;
    return true;
  }
  int depth_ = 0;
};

}  // namespace

Json parse_json(const std::string& text, const std::string& where) {
  DepthCheck check;
  if (!Json::sax_parse(text, &check)) {
    CW_CHECK(!check.too_deep, ValueError, where, ": JSON nested deeper than ", kMaxJsonDepth, " levels");
    throw ValueError(detail::cat(where, ": not valid JSON: ", cut(check.syntax_error)));
  }
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {  // the first pass read the same text: unreachable in practice
    throw ValueError(detail::cat(where, ": not valid JSON: ", cut(e.what())));
  }
}

Json read_json_file(const std::filesystem::path& file, const std::string& where) {
  const std::string name = where.empty() ? file.string() : where;
  // A regular file of bounded size: a link to /dev/zero or a disk-sized file is refused rather
  // than read until memory runs out.
  std::error_code ec;
  CW_CHECK(std::filesystem::is_regular_file(file, ec), ValueError, name, ": cannot open the file (",
           ec ? ec.message() : "missing, or not a regular file", ")");
  const uintmax_t size = std::filesystem::file_size(file, ec);
  CW_CHECK(!ec, ValueError, name, ": cannot read the file (", ec.message(), ")");
  CW_CHECK(size <= kMaxJsonFileBytes, ValueError, name, ": the file is ", size, " bytes, over the ",
           kMaxJsonFileBytes, " a JSON file here may have");
  std::ifstream in(file, std::ios::binary);
  CW_CHECK(in, ValueError, name, ": cannot open the file");
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  CW_CHECK(in.gcount() == static_cast<std::streamsize>(size), ValueError, name, ": cannot read the file");
  return parse_json(text, name);
}

std::string json_show(const Json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    // replace: a cut through a multi-byte character must not make dump() throw.
    return Json(s.size() > 80 ? s.substr(0, 80) + "..." : s)
        .dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  if (v.is_array()) return detail::cat("an array of ", v.size(), " values");
  if (v.is_object()) return detail::cat("an object with ", v.size(), " keys");
  if (v.is_binary()) return "binary data";
  return v.dump();  // null, a boolean or a number: short
}

bool JsonReader::has(const std::string& key) const {
  if (!value_->is_object()) return false;
  const auto it = value_->find(key);
  return it != value_->end() && !it->is_null();
}

JsonReader JsonReader::at(const std::string& key) const {
  expect(value_->is_object(), "an object");
  const auto it = value_->find(key);
  const std::string path = path_.empty() ? key : path_ + "." + key;
  CW_CHECK(it != value_->end(), ValueError, where_, ": key '", path, "' is missing");
  return JsonReader(*it, where_, path);
}

JsonReader JsonReader::at(size_t index) const {
  const size_t n = size();
  const std::string path = detail::cat(path_, "[", index, "]");
  CW_CHECK(index < n, ValueError, where_, ": key '", path, "' is missing (the array has ", n, " values)");
  return JsonReader((*value_)[index], where_, path);
}

int64_t JsonReader::get_in(const std::string& key, int64_t lo, int64_t hi) const {
  const JsonReader v = at(key);
  const int64_t n = v.get<int64_t>();
  if (n < lo || n > hi) v.fail("expected an integer in [", lo, ", ", hi, "], found ", n);
  return n;
}

size_t JsonReader::size() const {
  expect(value_->is_array(), "an array");
  return value_->size();
}

}  // namespace cw
