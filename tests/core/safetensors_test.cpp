// Safetensors reader and writer: round trips, F16/BF16 conversion, a file made by Python's
// safetensors, every malformed-file case by name, the atomic write, and a randomized mutation
// test (bit flips, truncations, length fields, JSON edits) that may only ever throw cw::Error.
#include "core/safetensors.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numbers>
#include <random>

#include "support/check.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using test::all_close;
using test::f32;
using test::f64;
using test::i64;

// A file's bytes: 8-byte little-endian header length, header, data.
std::vector<char> st_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  out += header + data;
  return {out.begin(), out.end()};
}

template <class T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

std::vector<char> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::vector<char>& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Exact equality that tells -0 from 0 and matches NaN with NaN.
void expect_same_floats(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << "element " << i << ": " << got[i];
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
          << "element " << i << ": " << got[i] << " vs " << want[i];
    }
  }
}

// The values of the F16/BF16 patterns of tools/make_safetensors_fixture.py, in that order:
// min subnormal, max subnormal, min normal, 1, -2 (bf16: -123.5), max, inf, -inf, nan, -0, ~1/3.
const std::vector<uint16_t> kHalfBits = {0x0001, 0x03FF, 0x0400, 0x3C00, 0xC000, 0x7BFF,
                                         0x7C00, 0xFC00, 0x7E00, 0x8000, 0x3555};
const std::vector<uint16_t> kBf16Bits = {0x0001, 0x007F, 0x0080, 0x3F80, 0xC2F7, 0x7F7F,
                                         0x7F80, 0xFF80, 0x7FC0, 0x8000, 0x3EAB};
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
const std::vector<float> kHalfValues = {0x1p-24f, 0x3ffp-24f, 0x1p-14f, 1.f,  -2.f,      65504.f,
                                        kInf,     -kInf,      kNan,     -0.f, 0x555p-12f};
const std::vector<float> kBf16Values = {0x1p-133f, 0x7fp-133f, 0x1p-126f, 1.f,  -123.5f, 0xffp120f,
                                        kInf,      -kInf,      kNan,      -0.f, 0xabp-9f};

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw_safetensors_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(dir_);
  }
  std::vector<std::string> dir_entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  // A malformed file must throw E, through a real file and from memory alike, with a message
  // naming the file and every one of `parts` (the tensor at fault, the offending values).
  template <class E = ValueError>
  void expect_bad(const std::vector<char>& bytes, const std::vector<std::string>& parts) {
    const fs::path path = dir_ / "bad.safetensors";
    write_file(path, bytes);
    for (bool from_file : {true, false}) {
      SCOPED_TRACE(from_file ? "through a file" : "from memory");
      try {
        const SafetensorsFile f = from_file ? SafetensorsFile::open(path.string())
                                            : SafetensorsFile::from_bytes("bad.safetensors", bytes);
        f.load_all();
        ADD_FAILURE() << "no error";
      } catch (const E& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("bad.safetensors"), std::string::npos) << m;
        for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "'" << p << "' not in: " << m;
      }
    }
  }
  void expect_bad_header(const std::string& header, const std::string& data,
                         const std::vector<std::string>& parts) {
    SCOPED_TRACE(header);
    expect_bad(st_bytes(header, data), parts);
  }

  fs::path dir_;
};

TEST_F(Safetensors, RoundTripOfEveryDtypeAndLayout) {
  const Tensor base = ops::arange(0, 12, 1, DType::F64).view({3, 4});
  const std::map<std::string, Tensor> tensors = {
      {"f32", f32({1.5f, -2.f, 3.25f, 1e-30f, 7.f, -0.f}, {2, 3})},
      {"f64", f64({std::numbers::pi, -1e300, 5e-324}, {3})},
      {"i64", i64({std::numeric_limits<int64_t>::min(), -1, 0, std::numeric_limits<int64_t>::max()}, {2, 2})},
      {"scalar", ops::scalar(42.5, DType::F64)},
      {"empty", ops::zeros({0, 3})},
      {"transposed", base.t()},                          // non-contiguous
      {"strided", base.slice(1, 0, 4, 2)},               // every other column
      {"expanded", f32({1, 2}, {2, 1}).expand({2, 3})},  // stride 0
      {"unicode name é", ops::ones({1})},
  };
  const std::string path = (dir_ / "model.safetensors").string();
  save_safetensors(path, tensors, {{"format", "pt"}, {"note", "round trip"}});

  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.names().size(), tensors.size());
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "round trip"}}));
  EXPECT_EQ(f.info("transposed").dtype, "F64");
  EXPECT_EQ(f.info("transposed").shape, (Shape{4, 3}));
  for (const auto& [name, want] : tensors) {
    SCOPED_TRACE(name);
    const Tensor got = f.load(name);
    EXPECT_EQ(got.dtype(), want.dtype());
    EXPECT_EQ(got.shape(), want.shape());
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got.raw_data()) % kCpuAlignment, 0u);
    if (want.dtype() == DType::I64) {
      EXPECT_EQ(got.to_vector<int64_t>(), want.to_vector<int64_t>());
    } else {
      EXPECT_EQ(got.to_vector<double>(), want.to_vector<double>());  // bit-exact
    }
  }
  EXPECT_EQ(f.load("scalar").dim(), 0);
  // Conversion on request, as Tensor::to.
  EXPECT_EQ(f.load("f32", DType::F64).dtype(), DType::F64);
  EXPECT_TRUE(all_close(f.load("f32", DType::F64), tensors.at("f32").to(DType::F64)));
  EXPECT_EQ(f.load("i64", DType::F64).to_vector<double>()[1], -1.0);
  EXPECT_EQ(dir_entries(), std::vector<std::string>{"model.safetensors"});  // no temp file left
}

TEST_F(Safetensors, WriterAlignsTheDataForZeroCopy) {
  const std::string path = (dir_ / "aligned.safetensors").string();
  save_safetensors(path, {{"a_odd", ops::ones({3})}, {"b_big", ops::ones({64, 64})}, {"c", ops::ones({16})}});
  const std::vector<char> bytes = read_file(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);         // as the reference pads it
  EXPECT_EQ((8 + header_len) % 64, 0u);  // the data buffer starts on a cache line
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.info("b_big").begin % 64, 0u);  // 64-byte multiples first...
  EXPECT_EQ(f.info("c").begin % 64, 0u);
  EXPECT_EQ(f.info("a_odd").begin, 16384u + 64u);  // ...the odd-sized one last
}

// True when /proc/self/maps shows a mapping of `path`.
bool is_mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(path) != std::string::npos) return true;
  return false;
}

TEST_F(Safetensors, LargeAlignedTensorIsAPrivateMapping) {
  const std::string path = fs::canonical(dir_).string() + "/big.safetensors";
  const Tensor w = ops::arange(0, 128 * 128, 1, DType::F32).view({128, 128});  // 64 KiB
  save_safetensors(path, {{"w", w}, {"bias", ops::ones({5})}});
  const std::vector<char> before = read_file(path);
  {
    Tensor a;
    {
      const SafetensorsFile f = SafetensorsFile::open(path);
      a = f.load("w");
      EXPECT_TRUE(is_mapped(path));
      a.fill_(-1);  // copy-on-write: neither the file nor another load sees it
      EXPECT_TRUE(all_close(f.load("w"), w));
    }
    EXPECT_TRUE(is_mapped(path));  // the tensor outlives the file object
    EXPECT_EQ(a.to_vector<float>()[77], -1.f);
  }
  EXPECT_FALSE(is_mapped(path));  // the Storage deleter unmapped it
  EXPECT_EQ(read_file(path), before);
}

TEST_F(Safetensors, HalfAndBfloat16ConvertExactly) {
  const std::string header = R"({"h":{"dtype":"F16","shape":[11],"data_offsets":[0,22]},)"
                             R"("b":{"dtype":"BF16","shape":[11],"data_offsets":[22,44]},)"
                             R"("i":{"dtype":"I32","shape":[2],"data_offsets":[44,52]},)"
                             R"("m":{"dtype":"BOOL","shape":[2],"data_offsets":[52,54]},)"
                             R"("u":{"dtype":"U64","shape":[],"data_offsets":[54,62]}})";
  const std::string data = raw(kHalfBits) + raw(kBf16Bits) + raw(std::vector<int32_t>{-7, 2147483647}) +
                           std::string("\x01\x00", 2) + std::string(8, '\x01');
  // An odd offset (the I32 and U64 data are unaligned) is fine: copies do not care.
  const SafetensorsFile f = SafetensorsFile::from_bytes("conv.safetensors", st_bytes(header, data));
  EXPECT_EQ(f.load("h").dtype(), DType::F32);  // F16 and BF16 load as f32 by default
  expect_same_floats(f.load("h").to_vector<float>(), kHalfValues);
  expect_same_floats(f.load("b").to_vector<float>(), kBf16Values);
  expect_same_floats(f.load("h", DType::F64).to_vector<float>(), kHalfValues);  // exact via f32
  EXPECT_EQ(f.load("i").to_vector<int64_t>(), (std::vector<int64_t>{-7, 2147483647}));
  EXPECT_EQ(f.load("m").to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  try {
    f.load("u");
    ADD_FAILURE() << "U64 loaded";
  } catch (const DTypeError& e) {
    EXPECT_NE(std::string(e.what()).find("conv.safetensors: tensor 'u': dtype U64"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(f.load("missing"), IndexError);
}

TEST_F(Safetensors, ReadsAFileMadeByPythonSafetensors) {
  const SafetensorsFile f =
      SafetensorsFile::open(std::string(CW_FIXTURE_DIR) + "/safetensors_python.safetensors");
  EXPECT_EQ(f.names(),
            (std::vector<std::string>{"bfloat", "empty", "float32", "float64", "half", "int32", "int64"}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  expect_same_floats(f.load("half").to_vector<float>(), kHalfValues);
  expect_same_floats(f.load("bfloat").to_vector<float>(), kBf16Values);
  EXPECT_TRUE(all_close(f.load("float32"), f32({-1, -0.5, 0, 0.5, 1, 1.5}, {2, 3}), 0, 0));
  EXPECT_EQ(f.load("int64").to_vector<int64_t>(),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), 0,
                                  -5}));
  EXPECT_EQ(f.load("int32").to_vector<int64_t>(), (std::vector<int64_t>{-2147483648LL, 2147483647, 7}));
  EXPECT_EQ(f.load("float64").item(), 3.141592653589793);
  EXPECT_EQ(f.load("float64").dim(), 0);
  EXPECT_EQ(f.load("empty").shape(), (Shape{0, 4}));
}

TEST_F(Safetensors, MalformedFilesNameTheFileAndTheTensor) {
  const std::string f4 = std::string(4, '\0');
  const auto entry = [](const std::string& name, const std::string& body) {
    return "{\"" + name + "\":{" + body + "}}";
  };
  // The file as a whole.
  expect_bad(std::vector<char>(5, 0), {"5 bytes, too short"});
  std::vector<char> long_header = st_bytes("{}", "");
  long_header[0] = 100;
  expect_bad(long_header, {"header length 100 runs past the end of the file (10 bytes)"});
  expect_bad_header("[1, 2]", "", {"not a JSON object"});
  expect_bad_header("\"text\"", "", {"not a JSON object"});
  expect_bad_header(R"({"w":{"dtype":"F32")", "", {"not valid JSON"});
  expect_bad_header("{\"w\xff\":1}", "", {"not valid JSON"});  // invalid UTF-8
  expect_bad_header(R"({"__metadata__":[1]})", "", {"\"__metadata__\" is a JSON array"});
  expect_bad_header(R"({"__metadata__":{"k":3}})", "", {"\"__metadata__\" entry 'k' is 3"});
  // Duplicates (nlohmann would silently keep the last).
  expect_bad_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                    f4 + f4, {"'w' appears twice"});
  expect_bad_header(entry("w", R"("dtype":"F32","shape":[1],"shape":[1],"data_offsets":[0,4])"), f4,
                    {"tensor 'w'", "\"shape\" appears twice"});
  expect_bad_header(R"({"__metadata__":{"k":"a","k":"b"}})", "",
                    {"\"__metadata__\": the key \"k\" appears twice"});
  // One entry's fields.
  expect_bad_header(R"({"w":[1]})", "", {"tensor 'w'", "not an object"});
  expect_bad_header(entry("w", R"("shape":[1],"data_offsets":[0,4])"), f4, {"tensor 'w'", "no \"dtype\""});
  expect_bad_header(entry("w", R"("dtype":"F32","data_offsets":[0,4])"), f4, {"tensor 'w'", "no \"shape\""});
  expect_bad_header(entry("w", R"("dtype":"F32","shape":[1])"), f4, {"tensor 'w'", "no \"data_offsets\""});
  expect_bad_header(entry("w", R"("dtype":"F128","shape":[1],"data_offsets":[0,4])"), f4,
                    {"tensor 'w'", "unknown dtype \"F128\""});
  expect_bad_header(entry("w", R"("dtype":7,"shape":[1],"data_offsets":[0,4])"), f4,
                    {"tensor 'w'", "\"dtype\" is 7"});
  for (const std::string bad : {"-1", "1.5", "\"2\"", "9223372036854775808", "null"})
    expect_bad_header(entry("w", R"("dtype":"F32","shape":[)" + bad + R"(],"data_offsets":[0,4])"), f4,
                      {"tensor 'w'", "shape entry " + bad + " is not a non-negative 64-bit integer"});
  expect_bad_header(entry("w", R"("dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,4])"), f4,
                    {"tensor 'w'", "too many elements"});
  expect_bad_header(entry("w", R"("dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0])"), "",
                    {"tensor 'w'", "too many elements"});  // empty, but its strides would overflow
  expect_bad_header(entry("w", R"("dtype":"F32","shape":1,"data_offsets":[0,4])"), f4,
                    {"tensor 'w'", "\"shape\" is 1, not an array"});
  for (const std::string bad : {"[0]", "[0,4,8]", "[-4,0]", "[0,4.0]", "{}"})
    expect_bad_header(entry("w", R"("dtype":"F32","shape":[1],"data_offsets":)" + bad), f4,
                      {"tensor 'w'", "not a pair of non-negative integers"});
  expect_bad_header(entry("w", R"("dtype":"F32","shape":[1],"data_offsets":[4,0])"), f4,
                    {"tensor 'w'", "[4, 0] end before they begin"});
  // Truncated data: the header promises 8 bytes, the file has 4.
  expect_bad_header(entry("w", R"("dtype":"F32","shape":[2],"data_offsets":[0,8])"), f4,
                    {"tensor 'w'", "run past the end of the data buffer (4 bytes)"});
  expect_bad_header(entry("w", R"("dtype":"F32","shape":[2],"data_offsets":[0,4])"), f4,
                    {"tensor 'w'", "hold 4 bytes, but F32 (2,) needs 8"});
  expect_bad_header(entry("w", R"("dtype":"BF16","shape":[],"data_offsets":[0,4])"), f4,
                    {"tensor 'w'", "needs 2"});
  // Layout of the data buffer.
  expect_bad_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                    f4 + f4 + f4, {"tensor 'b'", "overlap tensor 'a'"});
  expect_bad_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                    f4 + f4 + f4, {"tensor 'b'", "leave bytes [4, 8) after tensor 'a' unused"});
  expect_bad_header(entry("w", R"("dtype":"F32","shape":[1],"data_offsets":[0,4])"), f4 + "xx",
                    {"bytes [4, 6) of the data buffer after tensor 'w' belong to no tensor"});
  expect_bad_header("{}", f4, {"bytes [0, 4) of the data buffer after the header belong to no tensor"});
  // Not safetensors at all.
  EXPECT_THROW(SafetensorsFile::open((dir_ / "none.safetensors").string()), Error);
  EXPECT_THROW(SafetensorsFile::open(dir_.string()), Error);
}

// A file of many small tensors opens in time linear in their number (issue 24: nlohmann's parser
// callback rescanned the whole header object after each entry, so 20,000 entries took 12.7 s).
// Only correctness is checked here; the timing is measured outside the tests.
TEST_F(Safetensors, OpensAFileOfTwentyThousandTensors) {
  constexpr int kCount = 20000;
  // Tensor i is the I32 scalar-like [1] holding i, stored in reverse order of the names so that
  // the layout check has to sort.
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}", data(4 * kCount, '\0');
  for (int i = 0; i < kCount; ++i) {
    const int32_t slot = kCount - 1 - i;
    header += ",\"t" + std::to_string(i) + R"(":{"dtype":"I32","shape":[1],"data_offsets":[)" +
              std::to_string(4 * slot) + "," + std::to_string(4 * slot + 4) + "]}";
    std::memcpy(data.data() + 4 * slot, &i, 4);
  }
  const fs::path path = dir_ / "many.safetensors";
  write_file(path, st_bytes(header + "}", data));
  const SafetensorsFile f = SafetensorsFile::open(path.string());
  EXPECT_EQ(f.names().size(), static_cast<size_t>(kCount));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.info("t7").begin, 4u * (kCount - 1 - 7));
  const std::map<std::string, Tensor> all = f.load_all();
  ASSERT_EQ(all.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; i += 997) EXPECT_EQ(all.at("t" + std::to_string(i)).item(), i) << i;
  int64_t sum = 0;
  for (const auto& [name, t] : all) sum += t.to_vector<int64_t>()[0];
  EXPECT_EQ(sum, int64_t{kCount} * (kCount - 1) / 2);
  // A duplicate at the end of so long a header is still found.
  expect_bad(st_bytes(header + R"(,"t0":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})", data),
             {"tensor 't0' appears twice"});
}

TEST_F(Safetensors, AFailedWriteLeavesTheOldFileAndNoTemporary) {
  const fs::path path = dir_ / "model.safetensors";
  save_safetensors(path.string(), {{"w", ops::ones({4})}});
  const std::vector<char> old = read_file(path);
  const std::map<std::string, Tensor> big = {{"w", ops::zeros({1 << 16})}};

  // A write that fails half way (the file size limit, EFBIG) leaves the old file as it was.
  rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = 4096;
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);  // else the kernel kills us instead of failing write
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  EXPECT_THROW(save_safetensors(path.string(), big), Error);
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(read_file(path), old);
  EXPECT_EQ(dir_entries(), std::vector<std::string>{"model.safetensors"});

  // Bad input is refused before anything is written.
  EXPECT_THROW(save_safetensors(path.string(), {{"w", Tensor()}}), ValueError);
  EXPECT_THROW(save_safetensors(path.string(), {{"__metadata__", ops::ones({1})}}), ValueError);
  EXPECT_THROW(save_safetensors(path.string(), {{"w\xff", ops::ones({1})}}), ValueError);
  EXPECT_THROW(save_safetensors(path.string(), {{"w", ops::ones({1})}}, {{"k", "\xc3"}}), ValueError);
  EXPECT_EQ(read_file(path), old);

  // The rename fails when the target is a directory; the temporary goes away.
  fs::create_directory(dir_ / "taken");
  EXPECT_THROW(save_safetensors((dir_ / "taken").string(), big), Error);
  EXPECT_TRUE(fs::is_directory(dir_ / "taken"));
  EXPECT_EQ(dir_entries(), (std::vector<std::string>{"model.safetensors", "taken"}));

  // No such directory; and (root bypasses permissions) an unwritable one.
  EXPECT_THROW(save_safetensors((dir_ / "no" / "x.safetensors").string(), big), Error);
  if (::geteuid() != 0) {
    fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_THROW(save_safetensors(path.string(), big), Error);
    fs::permissions(dir_, fs::perms::owner_all);
    EXPECT_EQ(read_file(path), old);
  }
  // A successful overwrite replaces the content.
  save_safetensors(path.string(), big);
  EXPECT_EQ(SafetensorsFile::open(path.string()).info("w").shape, (Shape{1 << 16}));
}

// ---------------------------------------------------------------- mutation test

// One random edit of a valid file: a bit flip, a truncation, a new length field, or an edit of
// the JSON text (characters, numbers, dtypes, deleted or repeated spans, moved tensors), the length field
// then usually fixed up so that the edit reaches the parser.
std::vector<char> mutate(std::vector<char> b, std::mt19937_64& rng) {
  const auto pick = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  uint64_t header_len = 0;
  std::memcpy(&header_len, b.data(), 8);
  std::string header(b.begin() + 8, b.begin() + 8 + static_cast<int64_t>(header_len));
  const std::string data(b.begin() + 8 + static_cast<int64_t>(header_len), b.end());
  static const std::vector<std::string> numbers = {"-1",
                                                   "0",
                                                   "1",
                                                   "1.5",
                                                   "1e30",
                                                   "-0",
                                                   "4294967296",
                                                   "9223372036854775807",
                                                   "18446744073709551615",
                                                   "18446744073709551616",
                                                   "99999999999999999999999"};
  static const std::vector<std::string> dtypes = {"F16", "BF16", "F32",     "F64", "I64", "I32",
                                                  "U64", "BOOL", "F8_E4M3", "X",   ""};
  static const std::string chars = "{}[]\",:-.0123456789eE \\u\xff\x80";
  switch (pick(9)) {
    case 0:  // flip 1-4 bits, mostly in the length field and header
      for (uint64_t k = 0, n = 1 + pick(4); k < n; ++k) {
        const uint64_t at = pick(4) ? pick(8 + header_len) : pick(b.size());
        b[at] = static_cast<char>(b[at] ^ (1 << pick(8)));
      }
      return b;
    case 1: b.resize(pick(b.size())); return b;  // truncate
    case 2: {                                    // a new length field
      const uint64_t choices[] = {0, 1, header_len - 1, header_len + 1, b.size(), b.size() - 8, ~0ull, rng()};
      const uint64_t n = choices[pick(8)];
      std::memcpy(b.data(), &n, 8);
      return b;
    }
    case 3: header[pick(header.size())] = chars[pick(chars.size())]; break;
    case 4: {  // replace a run of digits with another number
      const size_t at = header.find_first_of("0123456789", pick(header.size()));
      if (at == std::string::npos) break;
      header.replace(at, header.find_first_not_of("0123456789", at) - at, numbers[pick(numbers.size())]);
      break;
    }
    case 5: {  // replace a dtype name
      const size_t at = header.find("\"dtype\":\"", pick(header.size()));
      if (at == std::string::npos) break;
      const size_t from = at + 9;
      header.replace(from, header.find('"', from) - from, dtypes[pick(dtypes.size())]);
      break;
    }
    case 6: header.erase(pick(header.size()), 1 + pick(12)); break;
    case 7: {  // repeat a span (duplicate keys, nested brackets)
      const size_t at = pick(header.size());
      header.insert(at, header.substr(at, 1 + pick(40)));
      break;
    }
    case 8: {  // move one tensor: both offsets shift, so that only the layout check can object
      const size_t at = header.find("\"data_offsets\":[", pick(header.size()));
      uint64_t begin = 0, end = 0;
      if (at == std::string::npos ||
          std::sscanf(header.c_str() + at + 16, "%" SCNu64 ",%" SCNu64, &begin, &end) != 2)
        break;
      const int64_t delta = static_cast<int64_t>(pick(17)) - 8;
      header.replace(at + 16, header.find(']', at) - at - 16,
                     std::to_string(static_cast<int64_t>(begin) + delta) + "," +
                         std::to_string(static_cast<int64_t>(end) + delta));
      break;
    }
  }
  std::vector<char> out = st_bytes(header, data);
  if (pick(5) == 0) std::memcpy(out.data(), &header_len, 8);  // sometimes keep the stale length
  return out;
}

// Opens and loads everything; anything but a cw::Error naming the file fails the test.
void open_and_load(const std::function<SafetensorsFile()>& open, const std::string& label, int iteration) {
  try {
    const SafetensorsFile f = open();
    for (const auto& name : f.names()) {
      f.info(name);
      try {
        f.load(name);
        f.load(name, DType::F64);
      } catch (const DTypeError&) {  // U64 / F8 entries may be valid but unloadable
      }
    }
  } catch (const Error& e) {
    if (std::string(e.what()).find(label) == std::string::npos)
      ADD_FAILURE() << "iteration " << iteration << ": message does not name the file: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "iteration " << iteration << ": not a cw::Error: " << e.what();
  }
}

TEST_F(Safetensors, MutatedFilesOnlyEverThrowCwError) {
  const std::string made = (dir_ / "base.safetensors").string();
  save_safetensors(made,
                   {{"w", ops::ones({2, 3})},
                    {"s", ops::scalar(1, DType::F64)},
                    {"ids", i64({1, 2, 3}, {3})},
                    {"e", ops::zeros({0, 2})}},
                   {{"format", "pt"}});
  const std::vector<std::vector<char>> bases = {
      read_file(made), read_file(std::string(CW_FIXTURE_DIR) + "/safetensors_python.safetensors")};
  std::mt19937_64 rng(20231204);
  int accepted = 0;
  for (int i = 0; i < 12000; ++i) {
    const std::vector<char> bytes = mutate(bases[i % 2], rng);
    if (i % 40 == 0) {  // through a real file too: the pread path
      const std::string path = (dir_ / "mutant.safetensors").string();
      write_file(path, bytes);
      open_and_load([&] { return SafetensorsFile::open(path); }, path, i);
    } else {
      open_and_load([&] { return SafetensorsFile::from_bytes("mutant", bytes); }, "mutant", i);
    }
    try {
      SafetensorsFile::from_bytes("mutant", bytes);
      ++accepted;
    } catch (const Error&) {
    }
  }
  // Some mutants stay valid (a flipped bit in tensor data, a digit swapped for itself): the
  // test must exercise loading too, not only rejection.
  EXPECT_GT(accepted, 100);
  EXPECT_LT(accepted, 11000);
}

}  // namespace
}  // namespace cw
