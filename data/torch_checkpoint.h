// PyTorch checkpoints (`torch.save` of a state dict, e.g. a Hugging Face `pytorch_model.bin`):
// a bounds-checked reader of the zip format PyTorch has written since 1.6, so that a model folder
// without model.safetensors loads without Python and without executing its pickle. Part of data/
// (a model-file importer, beside model_files.h; core/ keeps the native formats).
//
// Format: a zip archive (entries stored, not compressed) holding, under one top folder <root>/,
//   data.pkl     the pickled object (protocol 2): an OrderedDict name -> tensor, each tensor a call
//                torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
//                hooks) whose storage is a persistent id ('storage', torch.FloatStorage, key,
//                location, numel)
//   data/<key>   the storages' bytes, little-endian
//   byteorder    "little" (absent in older files, which are little-endian)
//
// Decisions:
// - The pickle is not executed: a small stack machine interprets the opcodes a state dict uses and
//   accepts only the globals it needs (OrderedDict, the tensor/parameter rebuild functions, the
//   storage types); anything else is a ValueError naming the file and the global. The machine's
//   objects are bounded (nesting 64, no cycles), so no input can exhaust the stack or leak.
// - The zip index and every tensor (dtype, shape, strides and offset against its storage's size,
//   the storage against its entry) are checked when the file is opened, before any tensor is read;
//   a tensor is read when loaded (pread of its range), views of one storage (tied weights,
//   transposes) included. Compressed or encrypted entries, the pre-1.6 format and big-endian files
//   are refused with the one-line Python conversion to safetensors (kTorchToSafetensorsHint).
// - f16/bf16 load as f32, the integer and bool types as i64, as SafetensorsFile does.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cw::data {

class TorchCheckpoint {
 public:
  struct TensorInfo {
    std::string dtype;  // safetensors' names: "F32", "F16", "BF16", "F64", "I64", "I32", ...
    Shape shape;
    std::vector<int64_t> strides;  // elements, as PyTorch stores them
    int64_t storage_offset = 0;    // elements
    std::string storage;           // the key of data/<key>
  };

  // Opens and indexes the file (zip directory, pickle, every tensor's layout). Throws cw::Error
  // (ValueError for a malformed or unsupported file) naming the file.
  static TorchCheckpoint open(const std::string& path);
  // The same checks on bytes in memory; `label` stands for the file name in messages.
  static TorchCheckpoint from_bytes(std::string label, std::vector<char> bytes);

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // IndexError for an unknown name

  // The tensor as its natural dtype (f32, f64 or i64), or converted to `as`; always contiguous.
  Tensor load(const std::string& name, std::optional<DType> as = {}) const;
  std::map<std::string, Tensor> load_all(std::optional<DType> as = {}) const;

  struct Source;  // the file's bytes (defined in the .cpp)

 private:
  TorchCheckpoint(std::string path, std::shared_ptr<Source> source);
  void index();

  std::string path_;
  std::shared_ptr<Source> source_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> storages_;  // key -> (file offset, bytes)
};

// The Python line that converts a PyTorch checkpoint to safetensors, for messages.
extern const char* const kTorchToSafetensorsHint;

}  // namespace cw::data
