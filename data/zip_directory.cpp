// The central directory of a zip archive (see zip_directory.h): PKWARE's APPNOTE.TXT sections
// 4.3.7 (local header), 4.3.12 (central directory entry), 4.3.14-16 (end records), 4.5.3 (zip64).
#include "data/zip_directory.h"

#include <algorithm>

#include "core/error.h"

namespace cw::data::zip {

namespace {
constexpr uint64_t kMaxDirectoryBytes = uint64_t{64} << 20;
}  // namespace

std::map<std::string, Entry> read_directory(const FileBytes& f, const std::string& file, const char* hint) {
  const auto bad = [&](const auto&... why) {
    throw ValueError(detail::cat("pytorch: ", file, ": ", why...));
  };
  if (f.size < 22) bad("too short for a zip archive (", f.size, " bytes)");
  char magic[4];
  f.read(0, 4, magic, file);
  if (std::memcmp(magic, "PK\x03\x04", 4) != 0)
    bad("not a zip archive: a checkpoint of PyTorch before 1.6 (or not a PyTorch file); ", hint);
  // The end-of-central-directory record: its 22 bytes, then a comment of up to 65535 bytes.
  const uint64_t tail_n = std::min<uint64_t>(f.size, 22 + 65535);
  std::vector<char> tail(tail_n);
  f.read(f.size - tail_n, tail_n, tail.data(), file);
  int64_t at = -1;
  for (int64_t i = static_cast<int64_t>(tail_n) - 22; i >= 0; --i)
    if (get_le<uint32_t>(&tail[i]) == 0x06054b50u) {
      at = i;
      break;
    }
  if (at < 0) bad("no zip end-of-central-directory record (truncated file?)");
  const char* e = &tail[at];
  uint64_t count = get_le<uint16_t>(e + 10), dir_size = get_le<uint32_t>(e + 12),
           dir_at = get_le<uint32_t>(e + 16);
  if (get_le<uint16_t>(e + 4) != 0 || get_le<uint16_t>(e + 6) != 0)
    bad("multi-disk zip archives are not supported");
  const uint64_t eocd_pos = f.size - tail_n + static_cast<uint64_t>(at);
  if (count == 0xffff || dir_size == 0xffffffffu || dir_at == 0xffffffffu) {  // zip64
    if (eocd_pos < 20) bad("zip64 locator missing");
    char loc[20];
    f.read(eocd_pos - 20, 20, loc, file);
    if (get_le<uint32_t>(loc) != 0x07064b50u) bad("zip64 locator missing");
    const uint64_t z = get_le<uint64_t>(loc + 8);
    if (z > f.size || f.size - z < 56) bad("zip64 end record outside the file");
    char rec[56];
    f.read(z, 56, rec, file);
    if (get_le<uint32_t>(rec) != 0x06064b50u) bad("bad zip64 end record signature");
    count = get_le<uint64_t>(rec + 32);
    dir_size = get_le<uint64_t>(rec + 40);
    dir_at = get_le<uint64_t>(rec + 48);
  }
  if (dir_at > f.size || dir_size > f.size - dir_at) bad("the central directory lies outside the file");
  if (dir_size > kMaxDirectoryBytes)
    bad("central directory of ", dir_size, " bytes (limit ", kMaxDirectoryBytes, ")");
  if (count > dir_size / 46) bad(count, " entries cannot fit a central directory of ", dir_size, " bytes");
  std::vector<char> dir(dir_size);
  f.read(dir_at, dir_size, dir.data(), file);

  std::map<std::string, Entry> entries;
  uint64_t p = 0;
  for (uint64_t k = 0; k < count; ++k) {
    if (dir_size - p < 46 || get_le<uint32_t>(&dir[p]) != 0x02014b50u)
      bad("central directory entry ", k, " is malformed");
    const char* h = &dir[p];
    const uint16_t flags = get_le<uint16_t>(h + 8), method = get_le<uint16_t>(h + 10);
    uint64_t csize = get_le<uint32_t>(h + 20), usize = get_le<uint32_t>(h + 24),
             local = get_le<uint32_t>(h + 42);
    const uint64_t name_n = get_le<uint16_t>(h + 28), extra_n = get_le<uint16_t>(h + 30),
                   comment_n = get_le<uint16_t>(h + 32);
    if (dir_size - p - 46 < name_n + extra_n + comment_n) bad("central directory entry ", k, " overruns it");
    std::string name(h + 46, name_n);
    // zip64 sizes and offset: in the extra field 0x0001, those that are 0xffffffff here, in order.
    for (uint64_t x = 0; x + 4 <= extra_n;) {
      const char* xe = h + 46 + name_n + x;
      const uint16_t id = get_le<uint16_t>(xe), n = get_le<uint16_t>(xe + 2);
      if (x + 4 + n > extra_n) bad("entry '", name, "': malformed extra field");
      if (id == 0x0001) {
        uint64_t q = 4;
        for (uint64_t* v : {&usize, &csize, &local})
          if (*v == 0xffffffffu) {
            if (q + 8 > 4u + n) bad("entry '", name, "': zip64 field too short");
            *v = get_le<uint64_t>(xe + q);
            q += 8;
          }
      }
      x += 4 + n;
    }
    p += 46 + name_n + extra_n + comment_n;
    if (flags & 1) bad("entry '", name, "' is encrypted");
    if (method != 0 || csize != usize)
      bad("entry '", name, "' is compressed (method ", method,
          "); PyTorch stores entries uncompressed, so this ", "file was repacked: ", hint);
    if (local > f.size || f.size - local < 30) bad("entry '", name, "': local header outside the file");
    char lh[30];
    f.read(local, 30, lh, file);
    if (get_le<uint32_t>(lh) != 0x04034b50u) bad("entry '", name, "': bad local header signature");
    const uint64_t data_at = local + 30 + get_le<uint16_t>(lh + 26) + get_le<uint16_t>(lh + 28);
    if (data_at > f.size || usize > f.size - data_at)
      bad("entry '", name, "': ", usize, " bytes at offset ", data_at, " overrun the file (", f.size,
          " bytes)");
    if (!entries.emplace(std::move(name), Entry{data_at, usize}).second)
      bad("entry '", std::string(h + 46, name_n), "' appears twice");
  }
  return entries;
}

}  // namespace cw::data::zip
