// The PyTorch checkpoint reader (data/torch_checkpoint.h) against torch.save itself: every dtype
// and every kind of view in tests/fixtures/torch_checkpoint_views.bin (made by
// tools/make_bert_variants_fixture.py with PyTorch 1.13) loads equal to the values PyTorch wrote
// beside it as safetensors; and bad files (not a zip, truncated, repacked compressed, a foreign
// pickle global, a storage of the wrong size, every single-byte corruption of the pickle) are
// cw::Errors naming the file.
#include "data/torch_checkpoint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>

#include "core/error.h"
#include "core/safetensors.h"
#include "support/check.h"

namespace cw {
namespace {

const std::string kViews = std::string(CW_FIXTURE_DIR) + "/torch_checkpoint_views.bin";

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// The offset of `needle` in `bytes` (the test patches the stored, uncompressed entries in place).
size_t find(const std::vector<char>& bytes, const std::string& needle, size_t from = 0) {
  const auto it =
      std::search(bytes.begin() + static_cast<int64_t>(from), bytes.end(), needle.begin(), needle.end());
  EXPECT_NE(it, bytes.end()) << needle;
  return static_cast<size_t>(it - bytes.begin());
}

TEST(TorchCheckpoint, EveryDtypeAndViewLoadsAsPyTorchWroteIt) {
  const data::TorchCheckpoint ckpt = data::TorchCheckpoint::open(kViews);
  const SafetensorsFile expected =
      SafetensorsFile::open(std::string(CW_FIXTURE_DIR) + "/torch_checkpoint_views.safetensors");
  ASSERT_EQ(ckpt.names(), expected.names());
  for (const std::string& name : ckpt.names()) {
    const Tensor t = ckpt.load(name), e = expected.load(name);
    EXPECT_EQ(t.dtype(), e.dtype()) << name;
    EXPECT_TRUE(test::all_close(t, e, 0, 0)) << name;  // bit for bit, conversions included
  }
  EXPECT_EQ(ckpt.info("transposed").strides, (std::vector<int64_t>{1, 6}));
  EXPECT_EQ(ckpt.info("transposed").storage, ckpt.info("base").storage);  // one storage, two views
  EXPECT_EQ(ckpt.info("row_slice").storage_offset, 6);
  EXPECT_EQ(ckpt.info("f16").dtype, "F16");
  EXPECT_EQ(ckpt.load("f16", DType::F64).dtype(), DType::F64);
  EXPECT_THROW(ckpt.info("nope"), IndexError);
  // The same bytes from memory.
  const data::TorchCheckpoint mem = data::TorchCheckpoint::from_bytes("mem", read_bytes(kViews));
  EXPECT_TRUE(test::all_close(mem.load("column_slice"), expected.load("column_slice"), 0, 0));
}

TEST(TorchCheckpoint, BadFilesAreErrorsNamingTheFile) {
  const std::vector<char> good = read_bytes(kViews);
  const auto open = [](std::vector<char> b) {
    return data::TorchCheckpoint::from_bytes("ckpt.bin", std::move(b));
  };
  // Not a zip: the pre-1.6 format, with the conversion line.
  std::vector<char> legacy = good;
  legacy[0] = '\x80';
  std::string m = error_of([&] { open(legacy); });
  EXPECT_NE(m.find("ckpt.bin"), std::string::npos) << m;
  EXPECT_NE(m.find("before 1.6"), std::string::npos) << m;
  EXPECT_NE(m.find("save_file"), std::string::npos) << m;
  // Every truncation.
  for (size_t n = 0; n < good.size(); n += 7) {
    m = error_of([&] { open(std::vector<char>(good.begin(), good.begin() + static_cast<int64_t>(n))); });
    EXPECT_NE(m.find("ckpt.bin"), std::string::npos) << n << ": " << m;
  }
  // A compressed (deflate) entry: method 8 in the first central directory entry.
  std::vector<char> compressed = good;
  compressed[find(good, "PK\x01\x02") + 10] = 8;
  m = error_of([&] { open(compressed); });
  EXPECT_NE(m.find("compressed"), std::string::npos) << m;
  // A global a state dict does not use.
  std::vector<char> foreign = good;
  foreign[find(good, "_rebuild_tensor_v2") + 17] = '9';
  m = error_of([&] { open(foreign); });
  EXPECT_NE(m.find("torch._utils._rebuild_tensor_v9"), std::string::npos) << m;
  // A storage entry whose size disagrees with the pickle's element count: storage data/0's sizes
  // in its central directory entry (compressed and uncompressed) made 4 bytes smaller.
  std::vector<char> short_storage = good;
  bool patched = false;
  const std::string central = "PK\x01\x02";
  for (auto it = std::search(good.begin(), good.end(), central.begin(), central.end()); it != good.end();
       it = std::search(it + 1, good.end(), central.begin(), central.end())) {
    const size_t at = static_cast<size_t>(it - good.begin());
    const size_t name_n = static_cast<uint8_t>(good[at + 28]) | static_cast<uint8_t>(good[at + 29]) << 8;
    if (std::string(&good[at + 46], name_n).ends_with("/data/0")) {
      for (size_t field : {20, 24}) short_storage[at + field] = static_cast<char>(good[at + field] - 4);
      patched = true;
      break;
    }
  }
  ASSERT_TRUE(patched);
  m = error_of([&] { open(short_storage); });
  EXPECT_NE(m.find("storage '0'"), std::string::npos) << m;
}

// Every single-byte change of data.pkl (a small in-test fuzz; tests/fuzz has the real one).
TEST(TorchCheckpoint, EveryPickleByteCorruptedIsAnErrorOrAValidFile) {
  const std::vector<char> good = read_bytes(kViews);
  const size_t begin = find(good, "\x80\x02"), end = find(good, "PK\x03\x04", begin);
  for (size_t at = begin; at < end; ++at)
    for (char v : {'\0', '\xff', 'X', ')'}) {
      std::vector<char> b = good;
      b[at] = v;
      try {
        const data::TorchCheckpoint c = data::TorchCheckpoint::from_bytes("x", std::move(b));
        for (const auto& n : c.names()) c.load(n);
      } catch (const Error&) {
      }
    }
}

}  // namespace
}  // namespace cw
