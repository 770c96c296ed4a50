// The bytes of a model file, read only at offsets its reader has checked: an open descriptor
// (pread, or a private mapping of one range) or a buffer already in memory. Shared by the
// safetensors and CTranslate2 readers, which never read a whole file into memory. Part of core/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/storage.h"

namespace cw {

struct FileBytes {
  int fd = -1;
  std::vector<char> buffer;  // the bytes, when there is no descriptor
  uint64_t size = 0;
  std::string format;  // "safetensors", "ctranslate2": the first word of every message

  explicit FileBytes(std::string format_name) : format(std::move(format_name)) {}
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  ~FileBytes();

  // Opens `path` read-only (a regular file); cw::Error "<format>: cannot open <path>: <reason>".
  void open(const std::string& path);
  // Takes bytes already in memory.
  void adopt(std::vector<char> bytes);
  // Copies bytes [offset, offset + n) to dst. A file that shrank since it was opened, or a failed
  // read, is a cw::Error naming `file` (the path or label in messages) and the range.
  void read(uint64_t offset, uint64_t n, void* dst, const std::string& file) const;
  // A Storage viewing bytes [offset, offset + n) through a private mapping of their own, or null
  // when mapping is not possible (the caller then copies). MAP_PRIVATE + PROT_WRITE: writes to
  // the tensor are copy-on-write, so they never reach the file or another load of the tensor.
  std::shared_ptr<Storage> map(uint64_t offset, uint64_t n) const;
};

}  // namespace cw
