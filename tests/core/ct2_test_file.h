// The CTranslate2 reader tests' scaffolding: a small writer of model.bin files of any binary
// version (with hooks to damage them), exact float comparison, a model holding every dtype, and a
// fixture with a scratch folder and the bad-input check. Used by ctranslate2_test.cpp and
// ctranslate2_bad_input_test.cpp.
#pragma once

#include <gtest/gtest.h>
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

#include "core/ctranslate2.h"
#include "support/check.h"

namespace cw::ct2_test {

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

inline uint32_t item_size(uint8_t dtype_id) {
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
inline std::vector<char> ct2_bytes(uint32_t version, const std::vector<Var>& vars,
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

inline void write_file(const fs::path& p, const std::vector<char>& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Exact equality that tells -0 from 0 and matches NaN with NaN.
inline void expect_same_floats(const std::vector<float>& got, const std::vector<float>& want) {
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
inline std::vector<Var> every_dtype() {
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

}  // namespace cw::ct2_test
