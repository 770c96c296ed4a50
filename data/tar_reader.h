// A bounded reader of POSIX tar archives (ustar and pax, plus GNU long names), the container of
// WebDataset shards: one member at a time, in archive order, never more in memory than one
// member's bytes. Read through zlib's gzread, so a .tar.gz shard streams through the same code as
// a plain .tar (gzread passes plain files through, as in idx_reader.h). Part of data/; the
// WebDataset importer (import_image_webdataset.h) is its user.
//
// Why a hand-written reader and not libarchive: a shard needs a small part of tar (512-byte
// headers, octal or base-256 sizes, pax "path"/"size" records, GNU 'L' names), libarchive brings
// dozens of formats and compressors that would all parse untrusted downloads, and this reader's
// whole surface is fuzzed (tests/fuzz/tar_fuzz.cpp). Accepted: regular files ('0' and the old
// '\0'); skipped and counted: directories, links, devices, FIFOs, GNU sparse and volume headers,
// global pax headers. Every malformed archive is a cw::ValueError naming the file, the member and
// its byte offset: a bad header checksum (not a tar file, or corrupt), an unparsable size, a
// member larger than max_member_bytes, a malformed pax record, and an archive cut inside a header
// or a member ("truncated"). The end is the first all-zero block, or the end of the file at a
// block boundary (Python's tarfile accepts a missing end-of-archive marker too).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace cw::data {

struct TarMember {
  std::string name;    // path inside the archive (pax "path" or GNU long name when present)
  int64_t offset = 0;  // byte offset of the member's header, for messages
  std::string data;    // the member's bytes
};

class TarReader {
 public:
  // Opens the archive; ValueError naming it when it cannot be opened.
  explicit TarReader(const std::filesystem::path& path, int64_t max_member_bytes = int64_t{256} << 20);
  ~TarReader();
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  // The next regular file, or nullopt at the end of the archive. Throws as described above; after
  // a throw the reader is at an unknown place and must not be used again.
  std::optional<TarMember> next();

  // Entries that were not regular files (directories, links, ...), so far.
  int64_t skipped_entries() const { return skipped_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  // Reads exactly n bytes into dst; false at a clean end of file before the first byte when
  // `eof_ok`, ValueError (naming `what`) for a short read.
  bool read_exact(char* dst, int64_t n, bool eof_ok, const std::string& what);
  void skip(int64_t n, const std::string& what);

  std::filesystem::path path_;
  int64_t max_member_bytes_;
  int64_t position_ = 0;
  int64_t skipped_ = 0;
  struct File;
  std::unique_ptr<File> file_;
};

}  // namespace cw::data
