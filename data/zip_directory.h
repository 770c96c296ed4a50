// The directory of a zip archive whose entries are stored uncompressed (PyTorch's checkpoints):
// every entry's name and byte range, checked against the file before anything is read from it.
// Compressed, encrypted and multi-disk archives are refused; zip64 is read. Part of data/, used by
// torch_checkpoint.h.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <string>

#include "core/file_bytes.h"

namespace cw::data::zip {

struct Entry {
  uint64_t offset = 0, size = 0;  // of the entry's bytes in the file
};

// A little-endian integer at p (memcpy: p may be unaligned).
template <class T>
T get_le(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Every entry of the archive in `f`, by name. A malformed archive, a compressed or encrypted entry
// or one whose bytes overrun the file is a ValueError "<f.format>: <file>: ..."; `hint` (what to do
// instead) ends the messages for files that are valid zips but not as PyTorch writes them.
std::map<std::string, Entry> read_directory(const FileBytes& f, const std::string& file, const char* hint);

}  // namespace cw::data::zip
