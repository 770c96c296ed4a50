// Safetensors reader and writer (see safetensors.h). open() checks every header field, offset
// and size against the file before any tensor byte is read, so load() only copies or maps byte
// ranges already known to lie inside the file. The writer goes through a temporary file.
#include "core/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/file_bytes.h"
#include "core/stored_dtypes.h"

namespace cw {

// Safetensors bytes are little-endian; a big-endian host would need a byte swap per element.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using json = nlohmann::json;

// The reference implementation's cap: a larger header is refused before it is read.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// A tensor gets its own mapping only from this size on: a mapping costs a page and a kernel VMA
// (and a process has a limited number of them), which a small tensor is cheaper to copy than pay.
constexpr uint64_t kMapMinBytes = 64 * 1024;

// Every dtype the format defines (except the sub-byte ones), its size, and what load() makes of
// it by default. Knowing all of them lets open() check sizes even for tensors we cannot load.
struct StoredDType {
  const char* name;
  uint64_t size;
  std::optional<DType> natural;  // none: no counterpart among our dtypes
};
constexpr StoredDType kStoredDTypes[] = {
    {"F64", 8, DType::F64},   {"F32", 4, DType::F32},       {"F16", 2, DType::F32},
    {"BF16", 2, DType::F32},  {"I64", 8, DType::I64},       {"I32", 4, DType::I64},
    {"I16", 2, DType::I64},   {"I8", 1, DType::I64},        {"U32", 4, DType::I64},
    {"U16", 2, DType::I64},   {"U8", 1, DType::I64},        {"BOOL", 1, DType::I64},
    {"U64", 8, std::nullopt}, {"F8_E5M2", 1, std::nullopt}, {"F8_E4M3", 1, std::nullopt}};

const StoredDType* find_stored(const std::string& name) {
  for (const StoredDType& d : kStoredDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

// The safetensors name of one of our dtypes (what the writer stores and a load can map as is).
const char* stored_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
  }
  return "?";
}

template <class... Args>
[[noreturn]] void fail(const std::string& file, const Args&... args) {
  throw ValueError(detail::cat("safetensors: ", file, ": ", args...));
}

// A short description of a header value for messages. Never the dump of an array or object: a
// hostile header can nest them deeply, and dump() recurses.
std::string show(const json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    return "\"" + (s.size() > 40 ? s.substr(0, 40) + "..." : s) + "\"";
  }
  if (v.is_primitive()) return v.dump();
  return std::string("a JSON ") + v.type_name();
}

// A first pass over the header as SAX events: it finds a key given twice (tensor names at depth 1,
// the fields of one entry or of "__metadata__" at depth 2), which json::parse would silently
// resolve to the last value, and refuses nesting deeper than any header needs before a DOM of it
// is built. Not json::parse's callback: nlohmann's callback parser rescans the whole enclosing
// object each time a value in it closes, which made opening n tensors O(n^2) (issue 24: 20,000
// tensors took 12.7 s).
class HeaderKeyCheck : public nlohmann::json_sax<json> {
 public:
  static constexpr int kMaxDepth = 64;  // a valid header nests 3 deep (root, entry, shape)
  std::string problem;                  // why the parse stopped; empty when it did not

  bool key(std::string& k) override {
    if (depth_ == 1) {
      entry_ = k;
      fields_.clear();
      if (!names_.insert(k).second)
        return stop(k == "__metadata__" ? "\"__metadata__\" appears twice"
                                        : "tensor '" + k + "' appears twice");
    } else if (depth_ == 2 && !fields_.insert(k).second) {
      return stop(detail::cat(entry_ == "__metadata__" ? "\"__metadata__\"" : "tensor '" + entry_ + "'",
                              ": the key \"", k, "\" appears twice"));
    }
    return true;
  }
  bool start_object(std::size_t) override { return open(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_object() override { return --depth_, true; }
  bool end_array() override { return --depth_, true; }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const json::exception& e) override { throw e; }

 private:
  bool open() {
    return ++depth_ <= kMaxDepth || stop(detail::cat("the header nests deeper than ", kMaxDepth, " levels"));
  }
  bool stop(std::string why) {
    problem = std::move(why);
    return false;
  }
  int depth_ = 0;
  std::string entry_;                     // the depth-1 key being read
  std::set<std::string> names_, fields_;  // keys seen at depth 1, and in the current entry
};

using stored::bf16_to_float;
using stored::convert;
using stored::half_to_float;

// n elements of a stored dtype that needs conversion into its natural dtype (f32 or i64).
void decode(const std::string& dtype, const char* src, int64_t n, void* dst) {
  const auto widen = [](auto v) { return static_cast<int64_t>(v); };
  if (dtype == "F16") return convert<uint16_t, float>(src, n, dst, half_to_float);
  if (dtype == "BF16") return convert<uint16_t, float>(src, n, dst, bf16_to_float);
  if (dtype == "I32") return convert<int32_t, int64_t>(src, n, dst, widen);
  if (dtype == "I16") return convert<int16_t, int64_t>(src, n, dst, widen);
  if (dtype == "I8") return convert<int8_t, int64_t>(src, n, dst, widen);
  if (dtype == "U32") return convert<uint32_t, int64_t>(src, n, dst, widen);
  if (dtype == "U16") return convert<uint16_t, int64_t>(src, n, dst, widen);
  if (dtype == "U8" || dtype == "BOOL") return convert<uint8_t, int64_t>(src, n, dst, widen);
  throw Error(detail::cat("safetensors: no conversion from ", dtype));  // unreachable: table above
}

// One header entry, every field checked against the format and the data buffer's size.
SafetensorsFile::TensorInfo parse_entry(const std::string& file, const std::string& name, const json& entry,
                                        uint64_t data_size) {
  const auto bad = [&](const auto&... args) { fail(file, "tensor '", name, "': ", args...); };
  if (!entry.is_object()) bad("the entry is ", show(entry), ", not an object");
  const auto field = [&](const char* key) -> const json& {
    const auto it = entry.find(key);
    if (it == entry.end()) bad("the entry has no \"", key, "\"");
    return *it;
  };
  SafetensorsFile::TensorInfo info;

  const json& dtype = field("dtype");
  if (!dtype.is_string()) bad("\"dtype\" is ", show(dtype), ", not a string");
  info.dtype = dtype.get<std::string>();
  const StoredDType* stored = find_stored(info.dtype);
  if (!stored) bad("unknown dtype ", show(dtype));

  const json& shape = field("shape");
  if (!shape.is_array()) bad("\"shape\" is ", show(shape), ", not an array");
  for (const json& d : shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      bad("shape entry ", show(d), " is not a non-negative 64-bit integer");
    info.shape.push_back(d.get<int64_t>());
  }
  // The product of the non-zero sizes must fit in bytes, even when a zero makes the tensor
  // empty: row-major strides are such products.
  uint64_t product = 1;
  for (int64_t size : info.shape) {
    if (size == 0) continue;
    if (product > static_cast<uint64_t>(INT64_MAX) / stored->size / static_cast<uint64_t>(size))
      bad("shape ", shape_str(info.shape), " has too many elements");
    product *= static_cast<uint64_t>(size);
  }
  const uint64_t numel = static_cast<uint64_t>(numel_of(info.shape));

  const json& offsets = field("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    bad("\"data_offsets\" is not a pair of non-negative integers");
  info.begin = offsets[0].get<uint64_t>();
  info.end = offsets[1].get<uint64_t>();
  if (info.end < info.begin) bad("data_offsets [", info.begin, ", ", info.end, "] end before they begin");
  if (info.end > data_size)
    bad("data_offsets [", info.begin, ", ", info.end, "] run past the end of the data buffer (", data_size,
        " bytes)");
  if (info.end - info.begin != numel * stored->size)
    bad("data_offsets [", info.begin, ", ", info.end, "] hold ", info.end - info.begin, " bytes, but ",
        info.dtype, " ", shape_str(info.shape), " needs ", numel * stored->size);
  return info;
}

}  // namespace

// The file's bytes (core/file_bytes.h), named for the messages.
struct SafetensorsFile::Source : FileBytes {
  Source() : FileBytes("safetensors") {}
};

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto source = std::make_shared<Source>();
  source->open(path);
  return SafetensorsFile(path, std::move(source));
}

SafetensorsFile SafetensorsFile::from_bytes(std::string label, std::vector<char> bytes) {
  auto source = std::make_shared<Source>();
  source->adopt(std::move(bytes));
  return SafetensorsFile(std::move(label), std::move(source));
}

SafetensorsFile::SafetensorsFile(std::string path, std::shared_ptr<Source> source)
    : path_(std::move(path)), source_(std::move(source)) {
  const uint64_t size = source_->size;
  if (size < 8) fail(path_, "the file is ", size, " bytes, too short for the 8-byte header length");
  uint64_t header_len = 0;  // little-endian on disk and (static_assert above) in memory
  source_->read(0, 8, &header_len, path_);
  if (header_len > size - 8)
    fail(path_, "the header length ", header_len, " runs past the end of the file (", size, " bytes)");
  if (header_len > kMaxHeaderBytes)
    fail(path_, "the header length ", header_len, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  std::string header(header_len, '\0');
  source_->read(8, header_len, header.data(), path_);
  data_start_ = 8 + header_len;
  parse_header(header, size - data_start_);
  check_layout(size - data_start_);
}

void SafetensorsFile::parse_header(const std::string& header, uint64_t data_size) {
  HeaderKeyCheck check;
  json root;
  try {
    if (!json::sax_parse(header, &check)) fail(path_, check.problem);
    root = json::parse(header);
  } catch (const json::exception& e) {
    fail(path_, "the header is not valid JSON: ", e.what());
  }
  if (!root.is_object()) fail(path_, "the header is ", show(root), ", not a JSON object");

  for (const auto& [key, value] : root.items()) {
    if (key != "__metadata__") {
      tensors_.emplace(key, parse_entry(path_, key, value, data_size));
      continue;
    }
    if (!value.is_object()) fail(path_, "\"__metadata__\" is ", show(value), ", not an object");
    for (const auto& [k, v] : value.items()) {
      if (!v.is_string()) fail(path_, "\"__metadata__\" entry '", k, "' is ", show(v), ", not a string");
      metadata_.emplace(k, v.get<std::string>());
    }
  }
}

// The format requires the data buffer to be covered exactly, tensor after tensor. Gaps and
// trailing bytes are rejected like overlaps, as the reference implementation does: a file we
// accepted would otherwise fail to load in Python, and a gap is where a hostile file hides bytes.
void SafetensorsFile::check_layout(uint64_t data_size) const {
  std::vector<const std::pair<const std::string, TensorInfo>*> order;
  for (const auto& e : tensors_) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return std::pair(a->second.begin, a->second.end) < std::pair(b->second.begin, b->second.end);
  });
  uint64_t covered = 0;
  std::string previous = "the header";
  for (const auto* e : order) {
    const auto& [name, info] = *e;
    if (info.begin < covered)
      fail(path_, "tensor '", name, "': data_offsets [", info.begin, ", ", info.end, "] overlap ", previous);
    if (info.begin > covered)
      fail(path_, "tensor '", name, "': data_offsets [", info.begin, ", ", info.end, "] leave bytes [",
           covered, ", ", info.begin, ") after ", previous, " unused");
    covered = info.end;
    previous = "tensor '" + name + "'";
  }
  if (covered != data_size)
    fail(path_, "bytes [", covered, ", ", data_size, ") of the data buffer after ", previous,
         " belong to no tensor");
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& e : tensors_) out.push_back(e.first);
  return out;
}

const SafetensorsFile::TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  CW_CHECK(it != tensors_.end(), IndexError, "safetensors: ", path_, ": no tensor named '", name, "' (",
           tensors_.size(), " tensors in the file)");
  return it->second;
}

Tensor SafetensorsFile::load(const std::string& name, std::optional<DType> as) const {
  const TensorInfo& ti = info(name);
  const StoredDType& stored = *find_stored(ti.dtype);  // open() accepted only known dtypes
  CW_CHECK(stored.natural.has_value(), DTypeError, "safetensors: ", path_, ": tensor '", name, "': dtype ",
           ti.dtype, " has no counterpart among f32, f64, i64");
  const DType natural = *stored.natural;
  const bool as_stored = ti.dtype == stored_name(natural);
  const uint64_t offset = data_start_ + ti.begin, nbytes = ti.end - ti.begin;

  Tensor t;
  // Zero-copy only where the view keeps the Storage invariant of 64-byte alignment (the writer
  // below lays files out so that most large tensors qualify; Python's usually do not).
  if (as_stored && nbytes >= kMapMinBytes && offset % kCpuAlignment == 0) {
    if (auto storage = source_->map(offset, nbytes))
      t = Tensor(std::move(storage), ti.shape, contiguous_strides(ti.shape), 0, natural);
  }
  if (!t.defined()) {
    t = Tensor::empty(ti.shape, natural);
    if (as_stored) {
      source_->read(offset, nbytes, t.raw_data(), path_);
    } else {
      std::vector<char> raw(nbytes);
      source_->read(offset, nbytes, raw.data(), path_);
      decode(ti.dtype, raw.data(), t.numel(), t.raw_data());
    }
  }
  return as && *as != natural ? t.to(*as) : t;
}

std::map<std::string, Tensor> SafetensorsFile::load_all(std::optional<DType> as) const {
  std::map<std::string, Tensor> out;
  for (const auto& e : tensors_) out.emplace(e.first, load(e.first, as));
  return out;
}

// ---------------------------------------------------------------- writer

namespace {

// nlohmann's dump() throws on invalid UTF-8; check each string so the message can name it.
void check_utf8(const std::string& path, const char* what, const std::string& s) {
  try {
    (void)json(s).dump();
  } catch (const json::exception&) {
    throw ValueError(detail::cat("save_safetensors: ", path, ": ", what, " is not valid UTF-8"));
  }
}

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  struct Entry {
    const std::string* name;
    Tensor data;  // contiguous
    uint64_t nbytes;
  };
  std::vector<Entry> entries;
  for (const auto& [name, t] : tensors) {
    CW_CHECK(name != "__metadata__", ValueError, "save_safetensors: ", path,
             ": the name '__metadata__' is reserved for the metadata");
    check_utf8(path, detail::cat("the tensor name '", name, "'").c_str(), name);
    CW_CHECK(t.defined(), ValueError, "save_safetensors: ", path, ": tensor '", name, "' is undefined");
    CW_CHECK(t.device().is_cpu(), DeviceError, "save_safetensors: ", path, ": tensor '", name, "' is on ",
             t.device().str(), " (move it to the CPU first)");
    Tensor c = t.contiguous();
    entries.push_back({&name, c, static_cast<uint64_t>(c.numel()) * dtype_size(c.dtype())});
  }
  for (const auto& [key, value] : metadata) {
    check_utf8(path, "a metadata key", key);
    check_utf8(path, detail::cat("the metadata value of '", key, "'").c_str(), value);
  }
  // Tensors whose size is a multiple of 64 bytes go first: with the header padded so that the
  // data buffer starts on a 64-byte boundary, each of them then starts on one too and loads
  // without a copy. Within each group, by name (stable sort of a sorted map).
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return (a.nbytes % kCpuAlignment != 0) < (b.nbytes % kCpuAlignment != 0);
  });

  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const Entry& e : entries) {
    header[*e.name] = {{"dtype", stored_name(e.data.dtype())},
                       {"shape", e.data.shape()},
                       {"data_offsets", {offset, offset + e.nbytes}}};
    offset += e.nbytes;
  }
  std::string text = header.dump();
  // Spaces (JSON whitespace) up to a 64-byte boundary of the file; the header length stays a
  // multiple of 8, as the reference implementation pads it.
  text.append((kCpuAlignment - (8 + text.size()) % kCpuAlignment) % kCpuAlignment, ' ');
  const uint64_t header_len = text.size();

  AtomicFile file(path);  // the file appears under `path` whole or not at all
  file.write(&header_len, 8);
  file.write(text);
  for (const Entry& e : entries) file.write(e.data.raw_data(), e.nbytes);
  file.commit();
}

}  // namespace cw
