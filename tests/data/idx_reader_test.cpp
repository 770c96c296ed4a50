// Tests of data/idx_reader.h on small IDX files written byte by byte in a scratch folder: plain and
// gzip'd files decode to the right tensors, and every malformed file (empty, wrong magic,
// truncated, trailing bytes, unsupported type, count mismatch) gives an error naming the file, and
// a header declaring more than the file holds is refused without allocating it (issue 24).
#include "data/idx_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/peak_memory.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("cw_idx_test_" + std::to_string(::getpid()));
  TempDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path operator/(const std::string& f) const { return path / f; }
};

// An IDX file of unsigned bytes: magic 0 0 8 ndims, big-endian sizes, then the data.
Bytes idx_bytes(const std::vector<int32_t>& dims, const Bytes& data, uint8_t type = 0x08) {
  Bytes b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (int32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      b.push_back(static_cast<uint8_t>(static_cast<uint32_t>(d) >> shift));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void write_bytes(const fs::path& p, const Bytes& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void write_gz(const fs::path& p, const Bytes& b) {
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, b.data(), static_cast<unsigned>(b.size())), static_cast<int>(b.size()));
  gzclose(f);
}

// The message of the error of type E that read_idx throws on `p` ("" when none).
template <class E>
std::string idx_error(const fs::path& p) {
  try {
    data::read_idx(p);
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

// Two 2x3 grayscale images with distinct values.
const Bytes kPixels = {0, 51, 102, 153, 204, 255, 1, 2, 3, 4, 5, 6};

TEST(IdxReader, ReadsGrayscaleImagesAsNchwInUnitRange) {
  TempDir dir;
  write_bytes(dir / "img", idx_bytes({2, 2, 3}, kPixels));
  const data::IdxArray a = data::read_idx(dir / "img");
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 2, 3}));
  EXPECT_EQ(a.count(), 2);
  EXPECT_EQ(a.item_size(), 6);
  const Tensor t = data::read_idx_images(dir / "img");
  EXPECT_EQ(t.shape(), (Shape{2, 1, 2, 3}));  // (N, C, H, W)
  EXPECT_EQ(t.dtype(), DType::F32);
  const auto v = t.to_vector<float>();
  for (size_t i = 0; i < kPixels.size(); ++i) EXPECT_FLOAT_EQ(v[i], kPixels[i] / 255.0f) << i;
}

TEST(IdxReader, ChannelsLastBecomesChannelsFirst) {
  TempDir dir;
  // One 1x2 RGB image: pixel 0 = (10, 20, 30), pixel 1 = (40, 50, 60), stored (N, H, W, C).
  write_bytes(dir / "rgb", idx_bytes({1, 1, 2, 3}, {10, 20, 30, 40, 50, 60}));
  const Tensor t = data::read_idx_images(dir / "rgb");
  EXPECT_EQ(t.shape(), (Shape{1, 3, 1, 2}));
  const auto v = t.to_vector<float>();
  const float expect[] = {10, 40, 20, 50, 30, 60};  // channel planes
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(v[static_cast<size_t>(i)] * 255.0f, expect[i]) << i;
}

TEST(IdxReader, GzipAndPlainFilesGiveTheSameData) {
  TempDir dir;
  write_bytes(dir / "img", idx_bytes({2, 2, 3}, kPixels));
  write_gz(dir / "img.gz", idx_bytes({2, 2, 3}, kPixels));
  EXPECT_EQ(data::read_idx(dir / "img.gz").data, data::read_idx(dir / "img").data);
  EXPECT_EQ(data::read_idx(dir / "img.gz").dims, data::read_idx(dir / "img").dims);
}

TEST(IdxReader, ReadsLabelsAsI64AndChecksTheClassCount) {
  TempDir dir;
  write_bytes(dir / "lab", idx_bytes({4}, {3, 0, 9, 1}));
  const Tensor y = data::read_idx_labels(dir / "lab", 10);
  EXPECT_EQ(y.dtype(), DType::I64);
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{3, 0, 9, 1}));
  try {
    data::read_idx_labels(dir / "lab", 5);
    FAIL() << "label 9 of 5 classes accepted";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("label 9 of item 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find((dir / "lab").string()), std::string::npos) << e.what();
  }
  // Labels read as images, images as labels: the dims are named.
  EXPECT_THROW(data::read_idx_images(dir / "lab"), ValueError);
  write_bytes(dir / "img", idx_bytes({2, 2, 3}, kPixels));
  EXPECT_THROW(data::read_idx_labels(dir / "img"), ValueError);
}

TEST(IdxReader, CountMismatchBetweenImagesAndLabelsNamesBothFiles) {
  TempDir dir;
  write_bytes(dir / "img", idx_bytes({2, 2, 3}, kPixels));
  write_bytes(dir / "lab", idx_bytes({3}, {1, 2, 3}));
  try {
    data::check_idx_pair(data::read_idx(dir / "img"), data::read_idx(dir / "lab"));
    FAIL() << "2 images with 3 labels accepted";
  } catch (const ValueError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find((dir / "img").string() + " has 2 images"), std::string::npos) << m;
    EXPECT_NE(m.find((dir / "lab").string() + " has 3 labels"), std::string::npos) << m;
  }
}

TEST(IdxReader, BadFilesGiveErrorsNamingTheFile) {
  TempDir dir;
  const Bytes good = idx_bytes({2, 2, 3}, kPixels);
  struct Case {
    std::string name;
    Bytes bytes;
    std::string expect;
  };
  Bytes truncated_data(good.begin(), good.end() - 1);
  Bytes truncated_header(good.begin(), good.begin() + 6);
  Bytes trailing = good;
  trailing.push_back(7);
  Bytes wrong_magic = good;
  wrong_magic[0] = 0x1f;  // e.g. a gzip magic in a file that zlib took as plain
  const std::vector<Case> cases = {
      {"empty", {}, "empty file"},
      {"short_magic", {0, 0}, "truncated in the magic"},
      {"wrong_magic", wrong_magic, "wrong magic 31 0 8 3"},
      {"zero_dims", {0, 0, 8, 0}, "wrong magic"},
      {"truncated_header", truncated_header, "truncated in the header"},
      {"truncated_data", truncated_data,
       "truncated: the header says (2, 2, 3) = 12 bytes of data, the file has 11"},
      {"trailing", trailing, "trailing bytes"},
      {"no_items", idx_bytes({0, 2, 3}, {}), "no items"},
      {"zero_size", idx_bytes({2, 0, 3}, {}), "a size of 0"},
      {"negative", idx_bytes({-1, 2}, {}), "negative size -1"},
  };
  for (const Case& c : cases) {
    write_bytes(dir / c.name, c.bytes);
    const std::string m = idx_error<ValueError>(dir / c.name);
    EXPECT_NE(m.find(c.expect), std::string::npos) << c.name << ": " << m;
    EXPECT_NE(m.find((dir / c.name).string()), std::string::npos) << c.name << ": " << m;
  }
  // Missing file.
  EXPECT_NE(idx_error<ValueError>(dir / "absent").find("no such file"), std::string::npos);
  // An element type other than unsigned byte (0x0D, f32).
  write_bytes(dir / "float", idx_bytes({1}, {0, 0, 0, 0}, 0x0D));
  EXPECT_NE(idx_error<NotImplementedError>(dir / "float").find("element type 0xd"), std::string::npos);
}

TEST(IdxReader, TruncatedGzipStreamIsReportedAsTruncated) {
  TempDir dir;
  // Incompressible-ish data so the cut lands inside the deflate stream, not in the trailer.
  Bytes pixels(4000);
  uint32_t s = 1;
  for (auto& p : pixels) {
    s = s * 1664525u + 1013904223u;
    p = static_cast<uint8_t>(s >> 24);
  }
  write_gz(dir / "full.gz", idx_bytes({10, 20, 20}, pixels));
  std::ifstream in(dir / "full.gz", std::ios::binary);
  Bytes gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gz.resize(gz.size() / 2);
  write_bytes(dir / "cut.gz", gz);
  const std::string m = idx_error<ValueError>(dir / "cut.gz");
  EXPECT_NE(m.find("truncated"), std::string::npos) << m;
  EXPECT_NE(m.find("cut.gz"), std::string::npos) << m;
}

// ------------------------------------------------------------------ untrusted headers (issue 24)

constexpr int64_t kMiB = int64_t{1} << 20;

TEST(IdxReader, DeclaredSizesAreNotAllocatedBeforeTheBytesArrive) {
  TempDir dir;
  // 2 GiB declared, none there; 2^40 (the old cap, which then failed with std::bad_alloc); 1 GiB
  // declared by a gzip stream holding 1,000 bytes; sizes whose product overflows int64.
  write_bytes(dir / "2gib", idx_bytes({2048, 1024, 1024}, {}));
  write_bytes(dir / "2p40", idx_bytes({1 << 20, 1 << 20}, {}));
  write_gz(dir / "1gib.gz", idx_bytes({1024, 1024, 1024}, Bytes(1000, 7)));
  write_bytes(dir / "overflow", idx_bytes({INT32_MAX, INT32_MAX, INT32_MAX}, {}));
  const struct {
    const char* name;
    std::string expect;
  } cases[] = {
      {"2gib", "truncated: the header says (2048, 1024, 1024) = 2147483648 bytes of data, the file has 0"},
      {"2p40", "truncated: the header says (1048576, 1048576) = 1099511627776 bytes of data, the file has 0"},
      {"1gib.gz",
       "truncated: the header says (1024, 1024, 1024) = 1073741824 bytes of data, the file has 1000"},
      {"overflow", "the header's sizes (2147483647, 2147483647, 2147483647) multiply to more than 2^63"},
  };
  const int64_t growth = test::peak_memory_growth([&] {
    for (const auto& c : cases) {
      const std::string m = idx_error<ValueError>(dir / c.name);
      EXPECT_NE(m.find(c.expect), std::string::npos) << c.name << ": " << m;
      EXPECT_NE(m.find((dir / c.name).string()), std::string::npos) << c.name << ": " << m;
    }
  });
  EXPECT_LT(growth, 64 * kMiB);
}

TEST(IdxReader, GzipDataLongerThanOneReadChunkIsWhole) {
  TempDir dir;
  // 3 MiB + 5 bytes: the gzip path reads 1 MiB at a time; it must join the pieces in order.
  Bytes pixels(3 * 1024 * 1024 + 5);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7 + i / 4096);
  write_gz(dir / "big.gz", idx_bytes({static_cast<int32_t>(pixels.size())}, pixels));
  EXPECT_EQ(data::read_idx(dir / "big.gz").data, pixels);
  Bytes more = pixels;
  more.push_back(1);
  write_gz(dir / "long.gz", idx_bytes({static_cast<int32_t>(pixels.size())}, more));
  EXPECT_NE(idx_error<ValueError>(dir / "long.gz").find("trailing bytes"), std::string::npos);
}

}  // namespace
}  // namespace cw
