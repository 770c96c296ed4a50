// CTranslate2 model-file reader, bad input: every malformed file by name (and truncation at
// every byte, and random damage), through a real file and from memory. Each throws a cw::Error
// naming the file and the part at fault; nothing crashes.
#include "core/ctranslate2.h"
#include "ct2_test_file.h"

namespace cw {
namespace {

using namespace ct2_test;

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

}  // namespace
}  // namespace cw
