// The tar reader (data/tar_reader.h) on archives built byte by byte: ustar, GNU and v7 headers,
// pax path/size records, GNU long names, skipped non-files, gzip'd archives, and the damaged
// ones: truncated headers and members, bad checksums, malformed sizes and pax records, members
// over the limit. Every failure must be a ValueError naming the file.
#include "data/tar_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tar_test_util.h"

namespace cw::data {
namespace {

namespace fs = std::filesystem;
using test::pax_entry;
using test::tar_end;
using test::tar_entry;

struct TempFile {
  fs::path path;
  explicit TempFile(const std::string& name, const std::string& bytes) {
    path = fs::temp_directory_path() / ("cw_tar_test_" + std::to_string(::getpid()) + "_" + name);
    std::ofstream(path, std::ios::binary) << bytes;
  }
  ~TempFile() { fs::remove(path); }
};

std::vector<std::pair<std::string, std::string>> read_all(const fs::path& p, int64_t limit = 1 << 20) {
  TarReader tar(p, limit);
  std::vector<std::pair<std::string, std::string>> out;
  while (auto m = tar.next()) out.emplace_back(m->name, m->data);
  return out;
}

std::string error_of(const std::string& bytes, int64_t limit = 1 << 20) {
  TempFile f("bad.tar", bytes);
  try {
    read_all(f.path, limit);
  } catch (const ValueError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(f.path.string()), std::string::npos) << m;
    return m;
  }
  return "(read)";
}

TEST(TarReader, ReadsMembersInOrderAcrossHeaderKinds) {
  const std::string big(1000, 'x');
  const std::string archive = tar_entry("000001.jpg", "JPEGBYTES") + tar_entry("000001.txt", "a cat") +
                              tar_entry("dir/", "", '5') + tar_entry("link", "", '2') +
                              tar_entry("gnu.txt", big, '0', "ustar  ") + tar_entry("v7.txt", "", '\0', "") +
                              tar_end();
  TempFile f("ok.tar", archive);
  TarReader tar(f.path);
  std::vector<std::pair<std::string, std::string>> got;
  while (auto m = tar.next()) got.emplace_back(m->name, m->data);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], (std::pair<std::string, std::string>{"000001.jpg", "JPEGBYTES"}));
  EXPECT_EQ(got[1].second, "a cat");
  EXPECT_EQ(got[2].first, "gnu.txt");
  EXPECT_EQ(got[2].second, big);
  EXPECT_EQ(got[3], (std::pair<std::string, std::string>{"v7.txt", ""}));
  EXPECT_EQ(tar.skipped_entries(), 2);   // the folder and the link
  EXPECT_FALSE(tar.next().has_value());  // stays at the end
}

TEST(TarReader, LongNamesFromPaxAndGnuAndTheUstarPrefix) {
  const std::string long_name = std::string(150, 'd') + "/sample.txt";
  std::string ustar = tar_entry("name.txt", "p");
  ustar.replace(345, 6, "prefix");  // POSIX prefix field; fix the checksum
  ustar.replace(148, 8, "        ");
  unsigned sum = 0;
  for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(ustar[static_cast<size_t>(i)]);
  std::snprintf(&ustar[148], 8, "%06o", sum);
  const std::string archive = pax_entry("path", long_name) + tar_entry("short", "1") +
                              tar_entry("././@LongLink", "gnu/" + long_name + std::string(1, '\0'), 'L') +
                              tar_entry("short2", "2") + ustar + tar_entry("after.txt", "3") + tar_end();
  TempFile f("names.tar", archive);
  const auto got = read_all(f.path);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].first, long_name);
  EXPECT_EQ(got[1].first, "gnu/" + long_name);
  EXPECT_EQ(got[2].first, "prefix/name.txt");
  EXPECT_EQ(got[3].first, "after.txt");  // the pax path applied to one entry only
}

TEST(TarReader, PaxSizeOverridesTheHeader) {
  std::string e = tar_entry("f.txt", "hello world");
  std::snprintf(&e[124], 12, "%011o", 0);  // header says 0 (checksum no longer matters: recompute)
  e.replace(148, 8, "        ");
  unsigned sum = 0;
  for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(e[static_cast<size_t>(i)]);
  std::snprintf(&e[148], 8, "%06o", sum);
  TempFile f("pax.tar", pax_entry("size", "11") + e + tar_end());
  const auto got = read_all(f.path);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second, "hello world");
}

TEST(TarReader, EndOfFileAtABlockBoundaryEndsTheArchive) {
  TempFile f("noend.tar", tar_entry("a.txt", "a") + tar_entry("b.txt", "bb"));
  EXPECT_EQ(read_all(f.path).size(), 2u);
  TempFile empty("empty.tar", "");
  EXPECT_TRUE(read_all(empty.path).empty());
}

TEST(TarReader, GzipCompressedShardsReadTheSame) {
  const std::string archive =
      tar_entry("k.jpg", std::string(3000, 'j')) + tar_entry("k.txt", "cap") + tar_end();
  const fs::path p = fs::temp_directory_path() / ("cw_tar_test_" + std::to_string(::getpid()) + ".tar.gz");
  gzFile g = gzopen(p.c_str(), "wb");
  ASSERT_NE(g, nullptr);
  gzwrite(g, archive.data(), static_cast<unsigned>(archive.size()));
  gzclose(g);
  const auto got = read_all(p);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].second.size(), 3000u);
  // Cut the compressed stream: an error naming the shard, not a crash or a silent short member.
  const auto size = fs::file_size(p);
  fs::resize_file(p, size / 2);
  try {
    read_all(p);
    ADD_FAILURE() << "a cut gzip stream read";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
  }
  fs::remove(p);
}

TEST(TarReader, DamagedArchivesAreErrorsNamingTheEntry) {
  const std::string good = tar_entry("a.jpg", std::string(700, 'a')) + tar_entry("a.txt", "cap") + tar_end();
  // Cut inside the second header, inside the first member's data, inside its padding.
  EXPECT_NE(error_of(good.substr(0, 1024 + 1536 - 1024 + 100)).find("truncated"), std::string::npos);
  const std::string cut = error_of(good.substr(0, 512 + 300));
  EXPECT_NE(cut.find("truncated"), std::string::npos) << cut;
  EXPECT_NE(cut.find("'a.jpg'"), std::string::npos) << cut;
  EXPECT_NE(error_of(good.substr(0, 512 + 800)).find("truncated"), std::string::npos);
  // Not a tar at all, and a flipped byte in a header.
  EXPECT_NE(error_of(std::string(600, 'z')).find("bad header checksum"), std::string::npos);
  std::string flipped = good;
  flipped[10] ^= 1;
  EXPECT_NE(error_of(flipped).find("entry at byte 0: bad header checksum"), std::string::npos);
  // A size field that is not octal (checksum made valid).
  std::string bad_size = tar_entry("s.txt", "x");
  bad_size[124] = '9';
  bad_size.replace(148, 8, "        ");
  unsigned sum = 0;
  for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(bad_size[static_cast<size_t>(i)]);
  std::snprintf(&bad_size[148], 8, "%06o", sum);
  EXPECT_NE(error_of(bad_size + tar_end()).find("malformed size"), std::string::npos);
  // A member over the limit is refused before its bytes are read.
  EXPECT_NE(error_of(good, 100).find("over the limit of 100"), std::string::npos);
  // Malformed pax records.
  EXPECT_NE(error_of(tar_entry("p", "99 path=x\n", 'x') + tar_end()).find("malformed pax record"),
            std::string::npos);
  EXPECT_NE(error_of(tar_entry("p", "8 pathx\n", 'x') + tar_end()).find("key=value"), std::string::npos);
  EXPECT_NE(error_of(pax_entry("size", "12a") + tar_end()).find("pax size"), std::string::npos);
}

// Archives written by Python's tarfile in its three formats (the fuzz seeds of
// tools/make_fuzz_seeds.py): what WebDataset's own tools write.
TEST(TarReader, ReadsWhatPythonsTarfileWrites) {
  const fs::path dir = fs::path(CW_FIXTURE_DIR) / ".." / "fuzz" / "corpus" / "tar";
  const auto ustar = read_all(dir / "ustar.tar");
  ASSERT_EQ(ustar.size(), 5u);
  EXPECT_EQ(ustar[0].first, "000000000.jpg");
  EXPECT_EQ(ustar[1].second, "a dog on a beach");
  EXPECT_EQ(ustar[4].second, "caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac");
  const auto pax = read_all(dir / "pax.tar");
  ASSERT_EQ(pax.size(), 2u);
  EXPECT_EQ(pax[0].first, std::string(120, 'd') + "/\xc3\xa9t\xc3\xa9/000000002.jpg");
  TarReader gnu(dir / "gnu.tar");
  const auto m = gnu.next();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->name, "shard/" + std::string(110, 'n') + ".jpg");
  EXPECT_FALSE(gnu.next().has_value());
  EXPECT_EQ(gnu.skipped_entries(), 2);  // the folder and the link
  const auto gz = read_all(dir / "shard.tar.gz");
  ASSERT_EQ(gz.size(), 2u);
  EXPECT_EQ(gz[0].second, ustar[0].second);
}

TEST(TarReader, MissingFileIsAnError) { EXPECT_THROW(TarReader("/nonexistent/shard.tar"), ValueError); }

}  // namespace
}  // namespace cw::data
