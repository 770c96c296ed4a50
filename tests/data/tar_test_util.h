// Test helper: tar archives built byte by byte (ustar headers with their checksums, pax and GNU
// long-name entries), for the tar reader and WebDataset importer tests. Part of tests/.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace cw::test {

// One 512-byte header plus the data padded to a block. `magic`: "ustar\0" "00" (POSIX), "ustar  "
// (GNU) or "" (old v7, no magic).
inline std::string tar_entry(const std::string& name, const std::string& data, char type = '0',
                             const std::string& magic = std::string("ustar\0"
                                                                    "00",
                                                                    8)) {
  std::string h(512, '\0');
  h.replace(0, std::min<size_t>(name.size(), 100), name.substr(0, 100));
  std::snprintf(&h[100], 8, "%07o", 0644);
  std::snprintf(&h[108], 8, "%07o", 0);
  std::snprintf(&h[116], 8, "%07o", 0);
  std::snprintf(&h[124], 12, "%011llo", static_cast<unsigned long long>(data.size()));
  std::snprintf(&h[136], 12, "%011o", 0);
  h[156] = type;
  h.replace(257, magic.size(), magic);
  h.replace(148, 8, "        ");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(&h[148], 8, "%06o", sum);
  h[155] = ' ';
  std::string out = h + data;
  out.append((512 - data.size() % 512) % 512, '\0');
  return out;
}

// A pax extended header ('x') carrying the given records for the next entry.
inline std::string pax_entry(const std::string& key, const std::string& value) {
  std::string body = " " + key + "=" + value + "\n";
  // The length counts its own digits: grow it until it is stable.
  size_t len = body.size() + 1;
  while (std::to_string(len).size() + body.size() != len) len = std::to_string(len).size() + body.size();
  return tar_entry("PaxHeaders/x", std::to_string(len) + body, 'x');
}

inline std::string tar_end() { return std::string(1024, '\0'); }

}  // namespace cw::test
