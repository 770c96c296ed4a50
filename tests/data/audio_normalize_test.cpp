// Tests of data/audio_normalize.h: utterance CMVN, global CMVN statistics (accumulate, merge,
// apply), and their WeNet-format JSON file: round trip, a hand-written WeNet file, bad files.
#include "data/audio_normalize.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/ops.h"
#include "support/check.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("cw_cmvn_test_" + name + "_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path operator/(const std::string& file) const { return path / file; }
};

// Log-mel-like features: offset around 12, a different spread per bin.
Tensor features(int64_t frames, int64_t dim, uint64_t seed) {
  Generator gen(seed);
  const Tensor scale = ops::add(ops::arange(0, static_cast<double>(dim)), 1.0);  // (F)
  return ops::add(ops::mul(ops::normal({frames, dim}, 0.0, 1.0, DType::F32, gen), scale), 12.0);
}

TEST(AudioCmvn, UtteranceGivesZeroMeanUnitVariance) {
  const Tensor x = features(200, 6, 1);
  const Tensor y = data::utterance_cmvn(x);
  EXPECT_EQ(y.shape(), x.shape());
  EXPECT_TRUE(test::all_close(ops::mean(y, {0}), ops::zeros({6}), 1e-5, 0.0));
  // Biased variance (over T), as the normalization uses it; eps = 1e-5 shifts it by < 1e-5.
  EXPECT_TRUE(test::all_close(ops::var(y, {0}, 0), ops::ones({6}), 1e-4, 0.0));

  const Tensor centered = data::utterance_cmvn(x, /*norm_vars=*/false);
  EXPECT_TRUE(test::all_close(centered, ops::sub(x, ops::mean(x, {0}, true)), 1e-5, 0.0));
}

TEST(AudioCmvn, UtteranceEdgeCases) {
  EXPECT_EQ(data::utterance_cmvn(ops::zeros({0, 80})).shape(), (Shape{0, 80}));
  EXPECT_TRUE(test::all_close(data::utterance_cmvn(ops::full({1, 3}, 5.0)), ops::zeros({1, 3}), 0.0, 0.0));
  // A constant bin (digital silence at the epsilon floor) stays finite: zero.
  EXPECT_TRUE(test::all_close(data::utterance_cmvn(ops::full({7, 2}, -15.9)), ops::zeros({7, 2}), 0.0, 0.0));
  EXPECT_THROW(data::utterance_cmvn(ops::zeros({2, 3, 4})), ShapeError);
  EXPECT_THROW(data::utterance_cmvn(ops::zeros({2, 3}, DType::F64)), ShapeError);
}

TEST(AudioCmvn, GlobalStatisticsOverADataSet) {
  const Tensor a = features(50, 4, 2), b = features(70, 4, 3);
  data::GlobalCmvn cmvn;
  cmvn.accumulate(a);
  cmvn.accumulate(b);
  EXPECT_EQ(cmvn.dim(), 4);
  EXPECT_EQ(cmvn.frame_count(), 120);
  const Tensor all = ops::concat({a, b}, 0);
  EXPECT_TRUE(test::all_close(cmvn.mean(), ops::mean(all, {0}), 1e-5, 1e-6));
  EXPECT_TRUE(test::all_close(cmvn.istd(), ops::rsqrt(ops::var(all, {0}, 0)), 1e-5, 1e-4));
  // Applied to the whole set: zero mean, unit (biased) variance per bin.
  const Tensor y = cmvn.apply(all);
  EXPECT_TRUE(test::all_close(ops::mean(y, {0}), ops::zeros({4}), 1e-4, 0.0));
  EXPECT_TRUE(test::all_close(ops::var(y, {0}, 0), ops::ones({4}), 1e-4, 0.0));
  // A padded batch (B, T, F) is normalized frame by frame the same way.
  const Tensor batch = ops::stack({a.narrow(0, 0, 10), b.narrow(0, 0, 10)}, 0);
  EXPECT_TRUE(test::all_close(cmvn.apply(batch).select(0, 1), cmvn.apply(b.narrow(0, 0, 10)), 0.0, 0.0));

  // Shards merged give the statistics of the whole.
  data::GlobalCmvn shard1, shard2;
  shard1.accumulate(a);
  shard2.accumulate(b);
  shard1.merge(shard2);
  EXPECT_EQ(shard1.frame_count(), 120);
  EXPECT_TRUE(test::all_close(shard1.mean(), cmvn.mean(), 0.0, 0.0));
  EXPECT_TRUE(test::all_close(shard1.istd(), cmvn.istd(), 0.0, 0.0));

  EXPECT_THROW(cmvn.accumulate(ops::zeros({3, 5})), ShapeError);
  EXPECT_THROW(cmvn.apply(ops::zeros({3, 5})), ShapeError);
  EXPECT_THROW(data::GlobalCmvn().mean(), ValueError);
  EXPECT_THROW(data::GlobalCmvn(4).istd(), ValueError);
}

TEST(AudioCmvn, JsonRoundTripIsExact) {
  TempDir dir("roundtrip");
  data::GlobalCmvn cmvn;
  cmvn.accumulate(features(33, 80, 4));
  cmvn.save(dir / "global_cmvn.json");
  const data::GlobalCmvn back = data::GlobalCmvn::load(dir / "global_cmvn.json");
  EXPECT_EQ(back.frame_count(), 33);
  EXPECT_TRUE(test::all_close(back.mean(), cmvn.mean(), 0.0, 0.0));
  EXPECT_TRUE(test::all_close(back.istd(), cmvn.istd(), 0.0, 0.0));
  EXPECT_THROW(data::GlobalCmvn().save(dir / "nothing.json"), ValueError);
}

TEST(AudioCmvn, ReadsAWeNetFile) {
  // As wenet/tools/compute_cmvn_stats.py writes it: sums, sums of squares, an integer count.
  TempDir dir("wenet");
  std::ofstream(dir / "global_cmvn")
      << R"({"mean_stat": [20.0, -8.0], "var_stat": [104.0, 20.0], "frame_num": 4})";
  const data::GlobalCmvn cmvn = data::GlobalCmvn::load(dir / "global_cmvn");
  // mean = (5, -2); var = 104/4 - 25 = 1 and 20/4 - 4 = 1: istd = 1.
  EXPECT_TRUE(test::all_close(cmvn.mean(), test::f32({5.0f, -2.0f}, {2}), 0.0, 0.0));
  EXPECT_TRUE(test::all_close(cmvn.istd(), test::f32({1.0f, 1.0f}, {2}), 0.0, 0.0));
  EXPECT_TRUE(
      test::all_close(cmvn.apply(test::f32({6.0f, -4.0f}, {1, 2})), test::f32({1.0f, -2.0f}, {1, 2})));
}

TEST(AudioCmvn, BadFilesNameTheFile) {
  TempDir dir("bad");
  auto expect_error = [](const fs::path& file, const std::string& reason) {
    try {
      data::GlobalCmvn::load(file);
      ADD_FAILURE() << "load(" << file << ") did not throw";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
      EXPECT_NE(msg.find(reason), std::string::npos) << "expected '" << reason << "' in: " << msg;
    }
  };
  expect_error(dir / "missing.json", "cannot open");
  std::ofstream(dir / "garbage.json") << "mean_stat = [1, 2]";
  expect_error(dir / "garbage.json", "not valid JSON");
  std::ofstream(dir / "keys.json") << R"({"mean_stat": [1.0], "frame_num": 3})";
  expect_error(dir / "keys.json", "var_stat");
  std::ofstream(dir / "lengths.json") << R"({"mean_stat": [1.0, 2.0], "var_stat": [1.0], "frame_num": 3})";
  expect_error(dir / "lengths.json", "same number");
  std::ofstream(dir / "count.json") << R"({"mean_stat": [1.0], "var_stat": [1.0], "frame_num": 0})";
  expect_error(dir / "count.json", "frame_num");
  std::ofstream(dir / "types.json") << R"({"mean_stat": ["a"], "var_stat": [1.0], "frame_num": 3})";
  expect_error(dir / "types.json", "types.json");
}

}  // namespace
}  // namespace cw
