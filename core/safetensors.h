// Safetensors checkpoints (https://huggingface.co/docs/safetensors): a bounds-checked,
// memory-mapped reader and an atomic writer, so weights move to and from the PyTorch / Hugging
// Face ecosystem without code execution. Part of core/.
//
// Format: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// and then the data buffer; offsets are bytes relative to its start, tensors are row-major.
//
// Decisions (see safetensors.cpp for the details):
// - Zero-copy: a tensor of 64 KiB or more, stored in the dtype asked for, whose data starts
//   64-byte aligned in the file, is a view of its own private (copy-on-write) mapping of the
//   file: the Storage alignment invariant holds, writing into the tensor never reaches the file
//   or another load, and the Storage's deleter unmaps it. Every other tensor is read (pread) and
//   converted into a fresh 64-byte-aligned allocation. Our writer lays files out so that most
//   large tensors qualify; Python's writer aligns to 8 bytes only, so those are mostly copied.
//   A mapped file must not be truncated in place while its tensors live (SIGBUS, as for any
//   mmap); files replaced by rename, as our writer does, are safe.
// - The data buffer must be covered exactly: gaps, overlaps and trailing bytes are rejected, as
//   the reference implementation does, so every file we accept also loads in Python.
// - Every malformed input throws cw::ValueError naming the file and, where one is at fault, the
//   tensor; a tensor that cannot be converted throws DTypeError, an unknown name IndexError,
//   an OS failure (open, read, write, rename) cw::Error with the system's reason.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cw {

class SafetensorsFile {
 public:
  // One header entry, as stored (before any conversion).
  struct TensorInfo {
    std::string dtype;  // safetensors name: "F32", "F16", "BF16", "I64", ...
    Shape shape;
    uint64_t begin = 0, end = 0;  // byte range in the data buffer
  };

  // Opens the file and validates the whole header and layout up front, so that later loads
  // only read or map byte ranges known to be inside it. Throws cw::Error (ValueError for a
  // malformed file) naming the file.
  static SafetensorsFile open(const std::string& path);
  // The same checks on bytes already in memory; `label` stands for the file name in messages.
  static SafetensorsFile from_bytes(std::string label, std::vector<char> bytes);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor `name` as dtype `as`. By default F16 and BF16 load as f32, F32/F64/I64 as
  // themselves, and the integer types (BOOL, U8, I8, I16, U16, I32, U32) as i64; asking for
  // another of our dtypes converts as Tensor::to does. Throws DTypeError for a stored dtype
  // we cannot represent (U64, F8_*), naming the file and the tensor.
  Tensor load(const std::string& name, std::optional<DType> as = {}) const;
  // Every tensor, by name.
  std::map<std::string, Tensor> load_all(std::optional<DType> as = {}) const;

  // Where tensor bytes come from: an open file descriptor or a buffer (defined in the .cpp).
  struct Source;

 private:
  SafetensorsFile(std::string path, std::shared_ptr<Source> source);
  void parse_header(const std::string& header, uint64_t data_size);
  void check_layout(uint64_t data_size) const;

  std::string path_;
  std::shared_ptr<Source> source_;
  uint64_t data_start_ = 0;  // file offset of the data buffer (8 + N)
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (any dtype of ours, any strides, CPU only) and `metadata` to `path`: first to
// a temporary file beside it, then renamed over `path`, so a reader never sees a half-written
// file and a failed write leaves an existing file untouched. Loads in Python's safetensors.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace cw
