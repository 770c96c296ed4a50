// PyTorch zip checkpoints (see torch_checkpoint.h): the zip directory (data/zip_directory.h), then a
// restricted pickle machine (Python's
// Lib/pickletools.py documents every opcode) that rebuilds the state dict's tensor descriptions.
#include "data/torch_checkpoint.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/error.h"
#include "core/file_bytes.h"
#include "core/stored_dtypes.h"
#include "data/zip_directory.h"

namespace cw::data {

static_assert(std::endian::native == std::endian::little, "the PyTorch reader assumes a little-endian host");

const char* const kTorchToSafetensorsHint =
    "convert it once with: python3 -c \"import torch; from safetensors.torch import save_file; "
    "save_file({k: v.clone().contiguous() for k, v in torch.load('pytorch_model.bin', "
    "map_location='cpu').items()}, 'model.safetensors')\"";

struct TorchCheckpoint::Source : FileBytes {
  Source() : FileBytes("pytorch") {}
};

namespace {

constexpr uint64_t kMaxPickleBytes = uint64_t{64} << 20;  // data.pkl (a state dict's is kilobytes)
constexpr int kMaxNesting = 64;                           // of the pickle's containers
constexpr size_t kMaxRank = 16;
constexpr int64_t kMaxViewNumel = int64_t{1} << 24;  // of a view larger than its storage

using zip::Entry;
using zip::get_le;

// ------------------------------------------------------------------------------ pickle machine

struct PyObj;
using Obj = std::shared_ptr<PyObj>;
struct PyObj {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor } kind = None;
  int64_t i = 0;                        // Bool, Int; Storage: numel; Tensor: storage offset
  std::string s;                        // Str; Global "module.name"; Storage: key; Tensor: storage key
  std::string dtype;                    // Storage, Tensor
  std::vector<Obj> items;               // Tuple, List; Dict as key, value, key, value, ...
  std::vector<int64_t> shape, strides;  // Tensor
  int depth = 0;                        // containers: 1 + the deepest item
  bool contained = false;               // inside a container: no longer mutable (so no cycles)
};

Obj make(PyObj::Kind k) {
  auto o = std::make_shared<PyObj>();
  o->kind = k;
  return o;
}

// The storage classes PyTorch pickles by name, and their element types.
const std::map<std::string, std::pair<const char*, int>>& storage_types() {
  static const std::map<std::string, std::pair<const char*, int>> t = {
      {"torch.FloatStorage", {"F32", 4}}, {"torch.DoubleStorage", {"F64", 8}},
      {"torch.HalfStorage", {"F16", 2}},  {"torch.BFloat16Storage", {"BF16", 2}},
      {"torch.LongStorage", {"I64", 8}},  {"torch.IntStorage", {"I32", 4}},
      {"torch.ShortStorage", {"I16", 2}}, {"torch.CharStorage", {"I8", 1}},
      {"torch.ByteStorage", {"U8", 1}},   {"torch.BoolStorage", {"BOOL", 1}}};
  return t;
}

int item_size(const std::string& dtype) {
  for (const auto& [name, t] : storage_types())
    if (dtype == t.first) return t.second;
  return 0;
}

class Unpickler {
 public:
  Unpickler(const std::vector<char>& bytes, std::string where,
            const std::map<std::string, std::pair<uint64_t, uint64_t>>& storages)
      : b_(bytes), where_(std::move(where)), storages_(storages) {}

  Obj run() {
    while (true) {
      const uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;     // PROTO
        case 0x95: take(8); break;  // FRAME
        case '.': {                 // STOP
          if (stack_.size() != 1 || !marks_.empty())
            fail("the pickle ends with ", stack_.size(), " objects on the stack");
          return stack_.back();
        }
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case 'N': push(make(PyObj::None)); break;
        case 0x88:
        case 0x89: {
          auto o = make(PyObj::Bool);
          o->i = op == 0x88;
          push(o);
          break;
        }
        case 'K': push_int(u8()); break;                       // BININT1
        case 'M': push_int(get_le<uint16_t>(take(2))); break;  // BININT2
        case 'J': push_int(get_le<int32_t>(take(4))); break;   // BININT
        case 0x8a: push_int(long1()); break;                   // LONG1
        case 'G': {                                            // BINFLOAT (big-endian)
          const char* p = take(8);
          uint64_t v = 0;
          for (int k = 0; k < 8; ++k) v = (v << 8) | static_cast<uint8_t>(p[k]);
          auto o = make(PyObj::Float);
          o->s = std::to_string(std::bit_cast<double>(v));
          push(o);
          break;
        }
        case 'X': push_str(get_le<uint32_t>(take(4))); break;   // BINUNICODE
        case 0x8c: push_str(u8()); break;                       // SHORT_BINUNICODE
        case 0x8d: push_str(get_le<uint64_t>(take(8))); break;  // BINUNICODE8
        case 'U': push_str(u8()); break;                        // SHORT_BINSTRING
        case 'T': push_str(get_le<uint32_t>(take(4))); break;   // BINSTRING
        case 'c': {                                             // GLOBAL module\nname\n
          const std::string module = line(), name = line();
          push_global(module + "." + name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const Obj name = pop(), module = pop();
          if (module->kind != PyObj::Str || name->kind != PyObj::Str) fail("STACK_GLOBAL of non-strings");
          push_global(module->s + "." + name->s);
          break;
        }
        case ')': push(make(PyObj::Tuple)); break;                   // EMPTY_TUPLE
        case ']': push(make(PyObj::List)); break;                    // EMPTY_LIST
        case '}': push(make(PyObj::Dict)); break;                    // EMPTY_DICT
        case 't': push(container(PyObj::Tuple, pop_mark())); break;  // TUPLE
        case 'l': push(container(PyObj::List, pop_mark())); break;   // LIST
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          std::vector<Obj> xs(op - 0x84);
          for (size_t k = xs.size(); k-- > 0;) xs[k] = pop();
          push(container(PyObj::Tuple, std::move(xs)));
          break;
        }
        case 'a': {
          Obj x = pop();
          add_items(top(), {x}, PyObj::List);
          break;
        }  // APPEND
        case 'e': {
          auto xs = pop_mark();
          add_items(top(), std::move(xs), PyObj::List);
          break;
        }  // APPENDS
        case 's': {
          Obj v = pop(), k = pop();
          add_items(top(), {k, v}, PyObj::Dict);
          break;
        }            // SETITEM
        case 'u': {  // SETITEMS
          auto xs = pop_mark();
          if (xs.size() % 2) fail("SETITEMS with an odd number of items");
          add_items(top(), std::move(xs), PyObj::Dict);
          break;
        }
        case 'q': memo_put(u8()); break;                                  // BINPUT
        case 'r': memo_put(get_le<uint32_t>(take(4))); break;             // LONG_BINPUT
        case 0x94: memo_put(static_cast<uint32_t>(memo_.size())); break;  // MEMOIZE
        case 'h': push(memo_get(u8())); break;                            // BINGET
        case 'j': push(memo_get(get_le<uint32_t>(take(4)))); break;       // LONG_BINGET
        case 'Q': push(persistent(pop())); break;                         // BINPERSID
        case 'R': {
          Obj args = pop(), f = pop();
          push(reduce(f, args));
          break;
        }            // REDUCE
        case 'b': {  // BUILD: state ignored
          pop();
          const auto k = top()->kind;
          if (k != PyObj::Dict && k != PyObj::Tensor) fail("BUILD on an unsupported object");
          break;
        }
        default: fail("unsupported pickle opcode 0x", hex(op), " at byte ", pos_ - 1);
      }
    }
  }

 private:
  template <class... A>
  [[noreturn]] void fail(const A&... why) const {
    throw ValueError(detail::cat(where_, ": ", why...));
  }
  static std::string hex(uint8_t v) {
    const char* d = "0123456789abcdef";
    return {d[v >> 4], d[v & 15]};
  }
  const char* take(uint64_t n) {
    if (n > b_.size() - pos_) fail("the pickle ends inside an opcode (byte ", pos_, ")");
    const char* p = b_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8() { return static_cast<uint8_t>(*take(1)); }
  std::string line() {
    const auto nl = std::find(b_.begin() + static_cast<int64_t>(pos_), b_.end(), '\n');
    if (nl == b_.end()) fail("unterminated GLOBAL name");
    std::string s(b_.begin() + static_cast<int64_t>(pos_), nl);
    pos_ = static_cast<size_t>(nl - b_.begin()) + 1;
    return s;
  }
  int64_t long1() {
    const uint8_t n = u8();
    if (n > 8) fail("an integer of ", int(n), " bytes (more than 64 bits)");
    const char* p = take(n);
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(p[k]);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(p[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign
    return static_cast<int64_t>(v);
  }
  void push(Obj o) {
    if (stack_.size() >= b_.size()) fail("pickle stack overflow");  // cannot happen: one push per opcode
    stack_.push_back(std::move(o));
  }
  void push_int(int64_t v) {
    auto o = make(PyObj::Int);
    o->i = v;
    push(o);
  }
  void push_str(uint64_t n) {
    auto o = make(PyObj::Str);
    o->s.assign(take(n), n);
    push(o);
  }
  void push_global(const std::string& name) {
    static const char* allowed[] = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                    "torch._utils._rebuild_parameter"};
    const bool ok = std::find_if(std::begin(allowed), std::end(allowed),
                                 [&](const char* a) { return name == a; }) != std::end(allowed) ||
                    storage_types().count(name);
    if (!ok)
      fail("the pickle refers to '", name, "', which a state dict of tensors does not (only those are read)");
    auto o = make(PyObj::Global);
    o->s = name;
    push(o);
  }
  Obj pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("pickle stack underflow");
    Obj o = std::move(stack_.back());
    stack_.pop_back();
    return o;
  }
  const Obj& top() const {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("pickle stack underflow");
    return stack_.back();
  }
  std::vector<Obj> pop_mark() {
    if (marks_.empty()) fail("no MARK on the pickle stack");
    std::vector<Obj> xs(stack_.begin() + static_cast<int64_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return xs;
  }
  // Items go into a container only if it is not itself inside one: no cycles, and depth stays known.
  void add_items(const Obj& c, std::vector<Obj> xs, PyObj::Kind kind) {
    if (c->kind != kind) fail(kind == PyObj::List ? "APPEND to a non-list" : "SETITEM on a non-dict");
    if (c->contained) fail("a container modified after being placed in another");
    for (Obj& x : xs) {
      if (x == c) fail("a container placed in itself");
      x->contained = true;
      c->depth = std::max(c->depth, x->depth + 1);
      if (c->depth > kMaxNesting) fail("containers nested deeper than ", kMaxNesting);
      c->items.push_back(std::move(x));
    }
  }
  Obj container(PyObj::Kind kind, std::vector<Obj> xs) {
    Obj c = make(kind);
    add_items(c, std::move(xs), kind);
    return c;
  }
  void memo_put(uint32_t k) { memo_[k] = top(); }
  Obj memo_get(uint32_t k) const {
    const auto it = memo_.find(k);
    if (it == memo_.end()) fail("memo key ", k, " read before it was written");
    return it->second;
  }
  static int64_t as_int(const Obj& o) { return o->kind == PyObj::Int ? o->i : -1; }

  // ('storage', <storage type>, key, location, numel) -> a Storage known to the zip.
  Obj persistent(const Obj& pid) {
    const auto& t = pid->items;
    if (pid->kind != PyObj::Tuple || t.size() != 5 || t[0]->kind != PyObj::Str || t[0]->s != "storage" ||
        t[1]->kind != PyObj::Global || !storage_types().count(t[1]->s) || t[2]->kind != PyObj::Str ||
        t[4]->kind != PyObj::Int)
      fail("a persistent id that is not ('storage', type, key, location, numel)");
    const auto& [dtype, size] = storage_types().at(t[1]->s);
    const auto it = storages_.find(t[2]->s);
    if (it == storages_.end()) fail("storage '", t[2]->s, "' has no data/", t[2]->s, " entry in the archive");
    const int64_t numel = t[4]->i;
    if (numel < 0 || static_cast<uint64_t>(numel) != it->second.second / size || it->second.second % size)
      fail("storage '", t[2]->s, "': ", numel, " elements of ", dtype, " do not match its entry of ",
           it->second.second, " bytes");
    Obj s = make(PyObj::Storage);
    s->s = t[2]->s;
    s->dtype = dtype;
    s->i = numel;
    return s;
  }

  Obj reduce(const Obj& f, const Obj& args) {
    if (f->kind != PyObj::Global || args->kind != PyObj::Tuple) fail("REDUCE of a non-callable");
    const auto& a = args->items;
    if (f->s == "collections.OrderedDict") {
      if (!a.empty()) fail("OrderedDict called with arguments");
      return make(PyObj::Dict);
    }
    if (f->s == "torch._utils._rebuild_parameter") {
      if (a.size() < 1 || a[0]->kind != PyObj::Tensor) fail("_rebuild_parameter of a non-tensor");
      return a[0];
    }
    if (f->s != "torch._utils._rebuild_tensor_v2") fail("'", f->s, "' is not callable here");
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (a.size() < 4 || a[0]->kind != PyObj::Storage || a[1]->kind != PyObj::Int ||
        a[2]->kind != PyObj::Tuple || a[3]->kind != PyObj::Tuple ||
        a[2]->items.size() != a[3]->items.size() || a[2]->items.size() > kMaxRank)
      fail("_rebuild_tensor_v2 with arguments of the wrong types");
    Obj t = make(PyObj::Tensor);
    t->s = a[0]->s;
    t->dtype = a[0]->dtype;
    t->i = a[1]->i;
    for (size_t d = 0; d < a[2]->items.size(); ++d) {
      t->shape.push_back(as_int(a[2]->items[d]));
      t->strides.push_back(as_int(a[3]->items[d]));
    }
    // The view must lie inside its storage: offset + sum((size - 1) * stride) < numel.
    const int64_t numel_storage = a[0]->i;
    int64_t last = t->i, count = 1;
    bool ok = t->i >= 0;
    for (size_t d = 0; ok && d < t->shape.size(); ++d) {
      const int64_t n = t->shape[d], st = t->strides[d];
      int64_t span = 0;
      ok = n >= 0 && st >= 0 && !__builtin_mul_overflow(n, count, &count) && count <= kMaxNumel;
      if (ok && n > 0)
        ok = !__builtin_mul_overflow(n - 1, st, &span) && !__builtin_add_overflow(last, span, &last);
    }
    if (!ok || (count > 0 && last >= numel_storage))
      fail("a tensor of shape ", shape_str(t->shape), ", strides ", shape_str(t->strides), " at offset ",
           t->i, " does not fit its storage '", t->s, "' of ", numel_storage, " elements");
    // Overlapping views (stride 0: expand) hold more elements than their storage; they are loaded
    // as copies, so their size is bounded too, before anything is allocated.
    if (count > std::max(numel_storage, kMaxViewNumel))
      fail("a tensor of shape ", shape_str(t->shape), " (", count, " elements) viewing only ", numel_storage,
           " stored elements (limit ", kMaxViewNumel, " for overlapping views)");
    return t;
  }

  const std::vector<char>& b_;
  std::string where_;
  const std::map<std::string, std::pair<uint64_t, uint64_t>>& storages_;
  size_t pos_ = 0;
  std::vector<Obj> stack_;
  std::vector<size_t> marks_;
  std::map<uint32_t, Obj> memo_;
};

// n elements of a stored dtype converted into its natural dtype (f32 or i64), as the safetensors
// reader does.
void decode(const std::string& dtype, const char* src, int64_t n, void* dst) {
  using stored::convert;
  const auto widen = [](auto v) { return static_cast<int64_t>(v); };
  if (dtype == "F16") return convert<uint16_t, float>(src, n, dst, stored::half_to_float);
  if (dtype == "BF16") return convert<uint16_t, float>(src, n, dst, stored::bf16_to_float);
  if (dtype == "I32") return convert<int32_t, int64_t>(src, n, dst, widen);
  if (dtype == "I16") return convert<int16_t, int64_t>(src, n, dst, widen);
  if (dtype == "I8") return convert<int8_t, int64_t>(src, n, dst, widen);
  if (dtype == "U8" || dtype == "BOOL") return convert<uint8_t, int64_t>(src, n, dst, widen);
  std::memcpy(dst, src, static_cast<size_t>(n) * static_cast<size_t>(item_size(dtype)));  // F32, F64, I64
}

DType natural_dtype(const std::string& dtype) {
  if (dtype == "F64") return DType::F64;
  if (dtype == "F32" || dtype == "F16" || dtype == "BF16") return DType::F32;
  return DType::I64;
}

}  // namespace

TorchCheckpoint::TorchCheckpoint(std::string path, std::shared_ptr<Source> source)
    : path_(std::move(path)), source_(std::move(source)) {}

TorchCheckpoint TorchCheckpoint::open(const std::string& path) {
  auto src = std::make_shared<Source>();
  src->open(path);
  TorchCheckpoint c(path, std::move(src));
  c.index();
  return c;
}

TorchCheckpoint TorchCheckpoint::from_bytes(std::string label, std::vector<char> bytes) {
  auto src = std::make_shared<Source>();
  src->adopt(std::move(bytes));
  TorchCheckpoint c(std::move(label), std::move(src));
  c.index();
  return c;
}

void TorchCheckpoint::index() {
  const auto entries = zip::read_directory(*source_, path_, kTorchToSafetensorsHint);
  const auto bad = [&](const auto&... why) {
    throw ValueError(detail::cat("pytorch: ", path_, ": ", why...));
  };
  // The one <root>/data.pkl; everything else of the checkpoint sits beside it.
  std::string root;
  int found = 0;
  for (const auto& [name, e] : entries) {
    const auto slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash) == "/data.pkl")
      root = name.substr(0, slash + 1), ++found;
  }
  if (found != 1) bad(found ? "several" : "no", " <folder>/data.pkl entries: not a PyTorch checkpoint");
  if (const auto it = entries.find(root + "byteorder"); it != entries.end()) {
    std::string order(std::min<uint64_t>(it->second.size, 16), '\0');
    source_->read(it->second.offset, order.size(), order.data(), path_);
    if (order != "little")
      bad("byte order '", order, "' (only little-endian checkpoints are read); ", kTorchToSafetensorsHint);
  }
  const std::string data_dir = root + "data/";
  for (const auto& [name, e] : entries)
    if (name.compare(0, data_dir.size(), data_dir) == 0)
      storages_[name.substr(data_dir.size())] = {e.offset, e.size};

  const Entry& pkl = entries.at(root + "data.pkl");
  if (pkl.size > kMaxPickleBytes) bad("data.pkl of ", pkl.size, " bytes (limit ", kMaxPickleBytes, ")");
  std::vector<char> bytes(pkl.size);
  source_->read(pkl.offset, pkl.size, bytes.data(), path_);
  const Obj top = Unpickler(bytes, "pytorch: " + path_ + ": data.pkl", storages_).run();
  if (top->kind != PyObj::Dict) bad("data.pkl holds no dict (a state dict is expected)");
  for (size_t k = 0; k < top->items.size(); k += 2) {
    const Obj &key = top->items[k], &v = top->items[k + 1];
    if (key->kind != PyObj::Str) bad("a state dict key that is not a string");
    if (v->kind != PyObj::Tensor)
      bad("entry '", key->s, "' is not a tensor (a nested checkpoint? only flat state dicts are read); ",
          kTorchToSafetensorsHint);
    if (!tensors_.emplace(key->s, TensorInfo{v->dtype, v->shape, v->strides, v->i, v->s}).second)
      bad("tensor '", key->s, "' appears twice");
  }
}

std::vector<std::string> TorchCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& e : tensors_) out.push_back(e.first);
  return out;
}

const TorchCheckpoint::TensorInfo& TorchCheckpoint::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  CW_CHECK(it != tensors_.end(), IndexError, "pytorch: ", path_, ": no tensor named '", name, "' (",
           tensors_.size(), " tensors in the file)");
  return it->second;
}

Tensor TorchCheckpoint::load(const std::string& name, std::optional<DType> as) const {
  const TensorInfo& ti = info(name);
  const int64_t item = item_size(ti.dtype), numel = numel_of(ti.shape);
  const uint64_t offset = storages_.at(ti.storage).first;
  Tensor t = Tensor::empty(ti.shape, natural_dtype(ti.dtype));
  if (numel > 0) {
    // The span of storage elements the view touches (checked against the storage at open).
    int64_t last = ti.storage_offset;
    for (size_t d = 0; d < ti.shape.size(); ++d) last += (ti.shape[d] - 1) * ti.strides[d];
    const int64_t span = last - ti.storage_offset + 1;
    std::vector<char> raw(static_cast<size_t>(span * item));
    source_->read(offset + static_cast<uint64_t>(ti.storage_offset * item), raw.size(), raw.data(), path_);
    if (ti.strides != contiguous_strides(ti.shape)) {  // a strided view: gather it, row-major
      std::vector<char> packed(static_cast<size_t>(numel * item));
      std::vector<int64_t> idx(ti.shape.size(), 0);
      for (int64_t k = 0; k < numel; ++k) {
        int64_t at = 0;
        for (size_t d = 0; d < idx.size(); ++d) at += idx[d] * ti.strides[d];
        std::memcpy(packed.data() + k * item, raw.data() + at * item, static_cast<size_t>(item));
        for (size_t d = idx.size(); d-- > 0;)
          if (++idx[d] < ti.shape[d])
            break;
          else
            idx[d] = 0;
      }
      raw.swap(packed);
    }
    decode(ti.dtype, raw.data(), numel, t.raw_data());
  }
  return as && *as != t.dtype() ? t.to(*as) : t;
}

std::map<std::string, Tensor> TorchCheckpoint::load_all(std::optional<DType> as) const {
  std::map<std::string, Tensor> out;
  for (const auto& e : tensors_) out.emplace(e.first, load(e.first, as));
  return out;
}

}  // namespace cw::data
