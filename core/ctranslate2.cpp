// CTranslate2 model-file reader (see ctranslate2.h). Building the index walks the file once,
// reading the small fields and stepping over variable data, and checks every field against the
// format and the file's size, so load() only reads byte ranges already known to lie inside it.
#include "core/ctranslate2.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/file_bytes.h"
#include "core/stored_dtypes.h"

namespace cw {

// CTranslate2 writes little-endian values; a big-endian host would need a byte swap per field.
static_assert(std::endian::native == std::endian::little, "CTranslate2 I/O assumes a little-endian host");

namespace {

// The newest binary version CTranslate2 writes (models/model.cc: current_binary_version); a
// newer one may change the layout, so it is refused rather than misread.
constexpr uint32_t kMaxVersion = 6;
// CTranslate2 stores the rank in a byte; no model has more than 4 dimensions, so a larger rank
// is a corrupt file, refused before its dimensions are read.
constexpr uint32_t kMaxRank = 8;

// The stored element types, indexed by CTranslate2's DataType id (version >= 4), their sizes,
// and what load() makes of them by default.
struct StoredDType {
  const char* name;
  uint64_t size;
  DType natural;
};
constexpr StoredDType kStoredDTypes[] = {{"f32", 4, DType::F32}, {"i8", 1, DType::I64},
                                         {"i16", 2, DType::I64}, {"i32", 4, DType::I64},
                                         {"f16", 2, DType::F32}, {"bf16", 2, DType::F32}};
constexpr uint32_t kNumStoredDTypes = sizeof kStoredDTypes / sizeof kStoredDTypes[0];

const StoredDType& find_stored(const std::string& name) {
  for (const StoredDType& d : kStoredDTypes)
    if (name == d.name) return d;
  throw Error(detail::cat("ctranslate2: unknown stored dtype ", name));  // unreachable: parse() checks
}

template <class... Args>
[[noreturn]] void fail(const std::string& file, const Args&... args) {
  throw ValueError(detail::cat("ctranslate2: ", file, ": ", args...));
}

using stored::bf16_to_float;
using stored::convert;
using stored::half_to_float;

// n elements of a stored dtype other than f32 into its natural dtype (f32 or i64).
void decode(const std::string& dtype, const char* src, int64_t n, void* dst) {
  const auto widen = [](auto v) { return static_cast<int64_t>(v); };
  if (dtype == "f16") return convert<uint16_t, float>(src, n, dst, half_to_float);
  if (dtype == "bf16") return convert<uint16_t, float>(src, n, dst, bf16_to_float);
  if (dtype == "i32") return convert<int32_t, int64_t>(src, n, dst, widen);
  if (dtype == "i16") return convert<int16_t, int64_t>(src, n, dst, widen);
  if (dtype == "i8") return convert<int8_t, int64_t>(src, n, dst, widen);
  throw Error(detail::cat("ctranslate2: no conversion from ", dtype));  // unreachable: table above
}

}  // namespace

// The file's bytes (core/file_bytes.h), named for the messages.
struct Ct2File::Source : FileBytes {
  Source() : FileBytes("ctranslate2") {}
};

namespace {

// Reads the index field by field from the start of the file. Every read is checked against the
// file's size first, so a truncated file throws naming the field it cut, never reads past it.
class Cursor {
 public:
  Cursor(const Ct2File::Source& source, const std::string& file) : source_(source), file_(file) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return source_.size - pos_; }

  // Steps over n bytes (a variable's data); `what` names them in the message.
  void skip(uint64_t n, const std::string& what) {
    need(n, what);
    pos_ += n;
  }
  uint8_t u8(const std::string& what) { return get<uint8_t>(what); }
  uint16_t u16(const std::string& what) { return get<uint16_t>(what); }
  uint32_t u32(const std::string& what) { return get<uint32_t>(what); }

  // A u16 length (the terminating NUL included) and that many bytes. CTranslate2 reads the
  // bytes as a C string, so a missing NUL or one inside the string would silently misread the
  // name; both are refused.
  std::string string(const std::string& what) {
    const uint16_t n = u16(what + " (its length)");
    if (n == 0) fail(file_, what, ": length 0 leaves no room for the terminating NUL");
    std::string s(n, '\0');
    need(n, what);
    source_.read(pos_, n, s.data(), file_);
    pos_ += n;
    if (s.back() != '\0')
      fail(file_, what, ": the ", n, " bytes at offset ", pos_ - n, " do not end with a NUL");
    s.pop_back();
    if (const size_t nul = s.find('\0'); nul != std::string::npos)
      fail(file_, what, ": a NUL at byte ", nul, " of ", n, " cuts the string short");
    return s;
  }

 private:
  template <class T>
  T get(const std::string& what) {
    need(sizeof(T), what);
    T v;  // little-endian on disk and (static_assert above) in memory
    source_.read(pos_, sizeof(T), &v, file_);
    pos_ += sizeof(T);
    return v;
  }
  void need(uint64_t n, const std::string& what) const {
    if (n > left())
      fail(file_, what, ": ", n, " bytes at offset ", pos_, " run past the end of the file (", source_.size,
           " bytes; truncated?)");
  }

  const Ct2File::Source& source_;
  const std::string& file_;
  uint64_t pos_ = 0;
};

}  // namespace

Ct2File Ct2File::open(const std::string& path) {
  auto source = std::make_shared<Source>();
  source->open(path);
  Ct2File file(path, std::move(source));
  file.parse();
  return file;
}

Ct2File Ct2File::from_bytes(std::string label, std::vector<char> bytes) {
  auto source = std::make_shared<Source>();
  source->adopt(std::move(bytes));
  Ct2File file(std::move(label), std::move(source));
  file.parse();
  return file;
}

Ct2File::Ct2File(std::string path, std::shared_ptr<Source> source)
    : path_(std::move(path)), source_(std::move(source)) {}

void Ct2File::parse() {
  if (source_->size == 0) fail(path_, "the file is empty");
  Cursor in(*source_, path_);
  version_ = in.u32("the binary version");
  if (version_ < 1 || version_ > kMaxVersion)
    fail(path_, "binary version ", version_, " is not supported (this reader knows versions 1 to ",
         kMaxVersion, "; is this a CTranslate2 model.bin?)");
  if (version_ >= 2) {
    spec_ = in.string("the spec name");
    spec_revision_ = in.u32("the spec revision");
  } else {
    spec_revision_ = 1;  // what CTranslate2 assumes for version 1
  }

  // No reserve(): the count is untrusted, and each variable takes at least 9 bytes to describe,
  // so a huge count ends at the end of the file, not in an allocation.
  const uint32_t count = in.u32("the number of variables");
  for (uint32_t i = 0; i < count; ++i) {
    const std::string name = in.string(detail::cat("the name of variable #", i));
    const std::string where = "variable '" + name + "'";
    const auto bad = [&](const auto&... args) { fail(path_, where, ": ", args...); };
    if (name.empty()) fail(path_, "variable #", i, " has an empty name");

    const uint32_t rank = in.u8(where + ": the rank");
    if (rank > kMaxRank) bad("rank ", rank, " exceeds the limit of ", kMaxRank);
    VariableInfo v;
    for (uint32_t d = 0; d < rank; ++d) v.shape.push_back(in.u32(detail::cat(where, ": dimension ", d)));

    uint64_t item_size = 0;
    if (version_ >= 4) {
      const uint32_t id = in.u8(where + ": the dtype id");
      if (id >= kNumStoredDTypes)
        bad("unknown dtype id ", id, " (known: 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16)");
      v.dtype = kStoredDTypes[id].name;
      item_size = kStoredDTypes[id].size;
      v.bytes = in.u32(where + ": the byte count");
    } else {
      // Before version 4 only the item size was stored; CTranslate2 maps it back as below
      // (get_dtype_from_item_size), so a 2-byte variable of those files is i16.
      item_size = in.u8(where + ": the item size");
      if (item_size == 4)
        v.dtype = "f32";
      else if (item_size == 2)
        v.dtype = "i16";
      else if (item_size == 1)
        v.dtype = "i8";
      else
        bad("unknown item size ", item_size, " (known: 1 i8, 2 i16, 4 f32)");
      v.bytes = uint64_t{in.u32(where + ": the element count")} * item_size;  // < 2^35: no overflow
    }

    // The product of the non-zero sizes times the item size must fit in an int64 (our shapes
    // and strides are int64), even when a zero makes the variable empty. Dividing before
    // multiplying keeps the check itself from overflowing.
    uint64_t product = item_size;
    for (int64_t size : v.shape) {
      if (size == 0) continue;
      if (product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / static_cast<uint64_t>(size))
        bad("shape ", shape_str(v.shape), " has too many elements");
      product *= static_cast<uint64_t>(size);
    }
    const uint64_t needed = static_cast<uint64_t>(numel_of(v.shape)) * item_size;
    if (v.bytes != needed)
      bad("holds ", v.bytes, " bytes, but ", v.dtype, " ", shape_str(v.shape), " needs ", needed);

    v.offset = in.pos();
    in.skip(v.bytes, where + ": the data");
    if (!variables_.emplace(name, std::move(v)).second) bad("appears twice");
  }

  if (version_ >= 3) {
    const uint32_t num_aliases = in.u32("the number of aliases");
    for (uint32_t i = 0; i < num_aliases; ++i) {
      const std::string alias = in.string(detail::cat("the name of alias #", i));
      std::string target = in.string(detail::cat("the target of alias '", alias, "'"));
      if (alias.empty()) fail(path_, "alias #", i, " has an empty name");
      if (variables_.count(alias)) fail(path_, "alias '", alias, "' has the name of a variable");
      // An alias of an earlier alias stands for that alias's variable.
      if (const auto it = aliases_.find(target); it != aliases_.end()) target = it->second;
      if (!variables_.count(target))
        fail(path_, "alias '", alias, "' names '", target, "', which is no variable of the file");
      if (!aliases_.emplace(alias, target).second) fail(path_, "alias '", alias, "' appears twice");
    }
  }

  // Trailing bytes are refused: the format has no place for them, so they mean a corrupt or
  // mis-concatenated file (or bytes hidden behind a valid model).
  if (in.left() != 0)
    fail(path_, in.left(), " trailing bytes at offset ", in.pos(), " after the ",
         version_ >= 3 ? "aliases" : "variables", " (the file is ", source_->size, " bytes)");
}

std::vector<std::string> Ct2File::names() const {
  std::vector<std::string> out;
  out.reserve(variables_.size());
  for (const auto& e : variables_) out.push_back(e.first);
  return out;
}

bool Ct2File::contains(const std::string& name) const {
  return variables_.count(name) != 0 || aliases_.count(name) != 0;
}

const Ct2File::VariableInfo& Ct2File::info(const std::string& name) const {
  const auto alias = aliases_.find(name);
  const auto it = variables_.find(alias != aliases_.end() ? alias->second : name);
  CW_CHECK(it != variables_.end(), IndexError, "ctranslate2: ", path_, ": no variable named '", name, "' (",
           variables_.size(), " variables and ", aliases_.size(), " aliases in the file)");
  return it->second;
}

Tensor Ct2File::load(const std::string& name, std::optional<DType> as) const {
  const VariableInfo& v = info(name);
  const StoredDType& stored = find_stored(v.dtype);
  Tensor t = Tensor::empty(v.shape, stored.natural);
  if (v.dtype == "f32") {
    source_->read(v.offset, v.bytes, t.raw_data(), path_);
  } else {
    std::vector<char> raw(v.bytes);
    source_->read(v.offset, v.bytes, raw.data(), path_);
    decode(v.dtype, raw.data(), t.numel(), t.raw_data());
  }
  return as && *as != stored.natural ? t.to(*as) : t;
}

// CTranslate2 quantizes a weight as q = round(w * scale), with one scale per output row for
// int8 (shape (rows,)) and one for the whole tensor for int16 (a single value); the inverse is
// w = q / scale. The scale is looked up beside the variable an alias names, where the converter
// puts it.
Tensor Ct2File::load_dequantized(const std::string& name) const {
  const auto alias = aliases_.find(name);
  const std::string& variable = alias != aliases_.end() ? alias->second : name;
  const VariableInfo& v = info(variable);
  const std::string scale_name = variable + "_scale";
  if ((v.dtype != "i8" && v.dtype != "i16") || !contains(scale_name)) return load(variable, DType::F32);

  const Tensor scale = load(scale_name, DType::F32).contiguous();
  const int64_t rows = v.shape.empty() ? 1 : v.shape[0];
  const int64_t n = scale.numel();
  CW_CHECK(n == 1 || (!v.shape.empty() && n == rows), ValueError, "ctranslate2: ", path_, ": variable '",
           scale_name, "' has shape ", shape_str(scale.shape()), ", but dequantizing '", variable,
           "' of shape ", shape_str(v.shape), " needs one scale per row (", rows, ") or a single one");
  const float* s = scale.data<float>();
  for (int64_t i = 0; i < n; ++i)
    CW_CHECK(std::isfinite(s[i]) && s[i] != 0.f, ValueError, "ctranslate2: ", path_, ": variable '",
             scale_name, "': scale ", s[i], " at index ", i, " is not a finite non-zero number");

  Tensor w = load(variable, DType::F32);  // fresh and contiguous
  float* out = w.data<float>();
  const int64_t numel = w.numel();
  const int64_t per_row = rows == 0 ? 0 : numel / rows;
  for (int64_t i = 0; i < numel; ++i) out[i] /= s[n == 1 ? 0 : i / per_row];
  return w;
}

int64_t Ct2File::load_scalar_int(const std::string& name) const {
  const VariableInfo& v = info(name);
  CW_CHECK(find_stored(v.dtype).natural == DType::I64, DTypeError, "ctranslate2: ", path_, ": variable '",
           name, "' is ", v.dtype, ", not an integer");
  CW_CHECK(numel_of(v.shape) == 1, ShapeError, "ctranslate2: ", path_, ": variable '", name, "' has shape ",
           shape_str(v.shape), ", not a single value");
  return load(name).data<int64_t>()[0];
}

}  // namespace cw
