// The tar reader; see tar_reader.h. Header layout (POSIX.1-2001 ustar, 512 bytes): name 0..100,
// mode, uid, gid, size 124..136, mtime, checksum 148..156, typeflag 156, linkname, magic
// 257..263 ("ustar\0" POSIX, "ustar " GNU), version, names, devices, prefix 345..500 (POSIX only).
#include "data/tar_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace cw::data {

struct TarReader::File {
  gzFile f = nullptr;
  ~File() {
    if (f != nullptr) gzclose(f);
  }
};

namespace {

constexpr int64_t kBlock = 512;
// Limits of the metadata members, whose bytes are held while the next header is read: a pax
// record set or a GNU long name far beyond any real path is a corrupt or hostile archive.
constexpr int64_t kMaxPaxBytes = int64_t{1} << 20;
constexpr int64_t kMaxLongName = int64_t{1} << 16;
// Sizes beyond this are not files anyone shards (and keep size + padding from overflowing).
constexpr int64_t kMaxSize = int64_t{1} << 50;

int64_t padded(int64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

// A NUL-terminated (or full-width) text field.
std::string field(const char* h, int at, int len) {
  const char* p = h + at;
  return std::string(p, static_cast<size_t>(std::find(p, p + len, '\0') - p));
}

// A numeric field: octal digits (leading spaces, ended by NUL or space; empty = 0, as Python's
// tarfile reads it) or GNU base-256 (first byte's high bit set). -1 when malformed.
int64_t number(const char* h, int at, int len) {
  const auto* p = reinterpret_cast<const unsigned char*>(h + at);
  if ((p[0] & 0x80) != 0) {
    if (p[0] != 0x80) return -1;  // negative, or a value too large for any size here
    int64_t v = 0;
    for (int i = 1; i < len; ++i) {
      if (v > (kMaxSize >> 8)) return -1;
      v = (v << 8) | p[i];
    }
    return v;
  }
  int i = 0;
  while (i < len && p[i] == ' ') ++i;
  int64_t v = 0;
  for (; i < len && p[i] != '\0' && p[i] != ' '; ++i) {
    if (p[i] < '0' || p[i] > '7' || v > (kMaxSize >> 3)) return -1;
    v = v * 8 + (p[i] - '0');
  }
  for (; i < len; ++i)
    if (p[i] != '\0' && p[i] != ' ') return -1;
  return v;
}

bool all_zero(const char* h) {
  return std::all_of(h, h + kBlock, [](char c) { return c == '\0'; });
}

// The stored checksum equals the sum of the header's bytes with the checksum field read as spaces,
// summed as unsigned bytes (POSIX) or, by some old writers, as signed chars.
bool checksum_ok(const char* h) {
  const int64_t stored = number(h, 148, 8);
  int64_t unsigned_sum = 0, signed_sum = 0;
  for (int i = 0; i < kBlock; ++i) {
    const bool in_field = i >= 148 && i < 156;
    unsigned_sum += in_field ? ' ' : static_cast<unsigned char>(h[i]);
    signed_sum += in_field ? ' ' : static_cast<signed char>(h[i]);
  }
  return stored >= 0 && (stored == unsigned_sum || stored == signed_sum);
}

}  // namespace

TarReader::TarReader(const std::filesystem::path& path, int64_t max_member_bytes)
    : path_(path), max_member_bytes_(max_member_bytes), file_(std::make_unique<File>()) {
  CW_CHECK(max_member_bytes > 0, ValueError, "TarReader: max_member_bytes must be > 0");
  CW_CHECK(std::filesystem::is_regular_file(path), ValueError, "tar: ", path.string(), ": no such file");
  file_->f = gzopen(path.c_str(), "rb");
  CW_CHECK(file_->f != nullptr, ValueError, "tar: cannot open ", path.string());
  gzbuffer(file_->f, 1 << 17);
}

TarReader::~TarReader() = default;

bool TarReader::read_exact(char* dst, int64_t n, bool eof_ok, const std::string& what) {
  int64_t got = 0;
  while (got < n) {
    const auto want = static_cast<unsigned>(std::min<int64_t>(n - got, int64_t{1} << 30));
    const int r = gzread(file_->f, dst + got, want);
    if (r < 0) {
      int errnum = 0;
      const char* msg = gzerror(file_->f, &errnum);
      throw ValueError(detail::cat("tar: ", path_.string(), ": ", what, " at byte ", position_ + got,
                                   ": read error (", msg ? msg : "unknown", ")"));
    }
    if (r == 0) break;
    got += r;
  }
  position_ += got;
  if (got == n) return true;
  if (got == 0 && eof_ok) return false;
  throw ValueError(detail::cat("tar: ", path_.string(), ": truncated: ", what, " needs ", n,
                               " bytes at byte ", position_ - got, ", the file ends after ", got));
}

void TarReader::skip(int64_t n, const std::string& what) {
  char buf[1 << 14];
  while (n > 0) {
    const int64_t k = std::min<int64_t>(n, sizeof buf);
    read_exact(buf, k, false, what);
    n -= k;
  }
}

std::optional<TarMember> TarReader::next() {
  std::string pending_name;   // from a pax "path" record or a GNU 'L' entry, for the next member
  int64_t pending_size = -1;  // from a pax "size" record
  for (;;) {
    char h[kBlock];
    const int64_t at = position_;
    if (!read_exact(h, kBlock, true, "header")) return std::nullopt;  // end of file at a block boundary
    if (all_zero(h)) return std::nullopt;                             // end-of-archive marker
    const std::string where = detail::cat("tar: ", path_.string(), ": entry at byte ", at);
    CW_CHECK(checksum_ok(h), ValueError, where,
             ": bad header checksum (not a tar archive, or a corrupt one)");
    std::string name = field(h, 0, 100);
    if (std::memcmp(h + 257, "ustar\0", 6) == 0) {  // POSIX: the prefix field extends the name
      const std::string prefix = field(h, 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    int64_t size = number(h, 124, 12);
    CW_CHECK(size >= 0, ValueError, where, " ('", name, "'): malformed size field");
    const char type = h[156];
    const std::string entry = where + " ('" + name + "')";

    if (type == 'x' || type == 'L') {  // metadata of the next entry
      CW_CHECK(size <= (type == 'x' ? kMaxPaxBytes : kMaxLongName), ValueError, entry, ": ",
               type == 'x' ? "pax header" : "GNU long name", " of ", size, " bytes, over the limit");
      std::string data(static_cast<size_t>(size), '\0');
      read_exact(data.data(), size, false, entry);
      skip(padded(size) - size, entry);
      if (type == 'L') {
        pending_name = data.substr(0, data.find('\0'));
        continue;
      }
      // Records "<length> <key>=<value>\n", the length counting the whole record.
      size_t pos = 0;
      while (pos < data.size() && data[pos] != '\0') {
        size_t sp = pos, len = 0;
        while (sp < data.size() && data[sp] >= '0' && data[sp] <= '9' && len < kMaxPaxBytes)
          len = len * 10 + static_cast<size_t>(data[sp++] - '0');
        CW_CHECK(sp > pos && sp < data.size() && data[sp] == ' ' && len > sp - pos + 1 &&
                     len <= data.size() - pos && data[pos + len - 1] == '\n',
                 ValueError, entry, ": malformed pax record at byte ", pos, " of the header");
        const std::string record = data.substr(sp + 1, pos + len - 1 - (sp + 1));
        const size_t eq = record.find('=');
        CW_CHECK(eq != std::string::npos && eq > 0, ValueError, entry, ": pax record without key=value");
        const std::string key = record.substr(0, eq), value = record.substr(eq + 1);
        if (key == "path") {
          pending_name = value;
        } else if (key == "size") {
          int64_t v = 0;
          CW_CHECK(!value.empty() && value.size() <= 16, ValueError, entry, ": pax size '", value, "'");
          for (char c : value) {
            CW_CHECK(c >= '0' && c <= '9', ValueError, entry, ": pax size '", value, "'");
            v = v * 10 + (c - '0');
          }
          CW_CHECK(v <= kMaxSize, ValueError, entry, ": pax size ", v, " too large");
          pending_size = v;
        }
        pos += len;
      }
      continue;
    }
    if (!pending_name.empty()) name = pending_name;
    if (pending_size >= 0) size = pending_size;  // a pax size overrides the header's (files > 8 GiB)
    pending_name.clear();
    pending_size = -1;
    if (type == '0' || type == '\0' || type == '7') {  // regular file ('7': contiguous, a regular file)
      CW_CHECK(size <= max_member_bytes_, ValueError, where, " ('", name, "'): member of ", size,
               " bytes, over the limit of ", max_member_bytes_);
      TarMember m;
      m.name = name;
      m.offset = at;
      m.data.resize(static_cast<size_t>(size));
      read_exact(m.data.data(), size, false, where + " ('" + name + "')");
      skip(padded(size) - size, where + " ('" + name + "')");
      return m;
    }
    // Directories, links, devices, FIFOs, global pax headers ('g'), GNU 'K' long link names,
    // sparse files and volume labels: not samples. Skip whatever data they carry.
    if (type != 'g' && type != 'K') ++skipped_;
    skip(padded(size), entry);
  }
}

}  // namespace cw::data
