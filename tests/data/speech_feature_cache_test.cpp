// Tests of data/feature_cache.h: the cached features equal Fbank on each file, a second run
// loads instead of recomputing, the key follows the settings and the data, and a missing or
// corrupt audio file fails the build naming its path and manifest line, leaving no cache file.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/error.h"
#include "data/audio_io.h"
#include "data/feature_cache.h"
#include "speech_test_corpus.h"

namespace cw {
namespace {

using test::SpeechTempDir;
namespace fs = std::filesystem;

std::vector<fs::path> cache_files(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  return out;
}

TEST(FeatureCache, EqualsFbankOnEachFile) {
  SpeechTempDir dir("cache_equal");
  const data::SpeechManifest m = data::SpeechManifest::read(test::write_tiny_corpus(dir.path));
  const data::FbankOptions opts;
  const data::FeatureCache cache = data::FeatureCache::build_or_load(m, opts, dir / "cache", 2);
  ASSERT_EQ(cache.size(), m.size());
  EXPECT_EQ(cache.num_bins(), 80);
  const data::Fbank fbank(opts);
  int64_t total = 0;
  for (int64_t i = 0; i < m.size(); ++i) {
    const Tensor expect = fbank.compute(data::load_audio(m[i].audio, 16000));
    const Tensor got = cache.features(i);
    ASSERT_EQ(got.shape(), expect.shape()) << m[i].id;
    EXPECT_EQ(got.to_vector<float>(), expect.to_vector<float>()) << m[i].id;  // bit-exact
    EXPECT_EQ(cache.num_frames(i), expect.size(0));
    // The stated duration and the frame count agree (25 ms window, 10 ms hop).
    EXPECT_NEAR(static_cast<double>(cache.num_frames(i)), (m[i].duration - 0.015) / 0.01, 1.5) << m[i].id;
    total += expect.size(0);
  }
  EXPECT_EQ(cache.total_frames(), total);
  EXPECT_THROW(cache.features(m.size()), IndexError);
  EXPECT_THROW(cache.num_frames(-1), IndexError);
}

TEST(FeatureCache, SecondRunLoadsWithoutRecomputing) {
  SpeechTempDir dir("cache_reload");
  const data::SpeechManifest m = data::SpeechManifest::read(test::write_tiny_corpus(dir.path));
  const data::FeatureCache built = data::FeatureCache::build_or_load(m, {}, dir / "cache", 2);
  EXPECT_TRUE(built.was_built());
  EXPECT_EQ(built.computed_utterances(), m.size());
  ASSERT_TRUE(fs::exists(built.file()));
  EXPECT_EQ(built.file().parent_path(), dir / "cache");
  EXPECT_EQ(built.file().filename().string().rfind("train-", 0), 0u) << built.file();
  EXPECT_EQ(cache_files(dir / "cache").size(), 1u);  // no temporary file left behind
  const auto mtime = fs::last_write_time(built.file());

  const data::FeatureCache loaded = data::FeatureCache::build_or_load(m, {}, dir / "cache", 2);
  EXPECT_FALSE(loaded.was_built());
  EXPECT_EQ(loaded.computed_utterances(), 0);
  EXPECT_EQ(loaded.file(), built.file());
  EXPECT_EQ(fs::last_write_time(built.file()), mtime);
  EXPECT_TRUE(test::same_features(built, loaded));
  EXPECT_EQ(loaded.manifest().size(), m.size());

  // The number of threads does not change the result.
  const data::FeatureCache one_thread = data::FeatureCache::build_or_load(m, {}, dir / "cache1", 1);
  EXPECT_TRUE(one_thread.was_built());
  EXPECT_TRUE(test::same_features(built, one_thread));
}

TEST(FeatureCache, KeyFollowsSettingsAndData) {
  SpeechTempDir dir("cache_key");
  const fs::path tsv = test::write_tiny_corpus(dir.path);
  const data::SpeechManifest m = data::SpeechManifest::read(tsv);
  const data::FeatureCache base = data::FeatureCache::build_or_load(m, {}, dir / "cache", 2);

  data::FbankOptions fewer_bins;
  fewer_bins.num_mel_bins = 40;
  const data::FeatureCache c40 = data::FeatureCache::build_or_load(m, fewer_bins, dir / "cache", 2);
  EXPECT_TRUE(c40.was_built());
  EXPECT_NE(c40.file(), base.file());
  EXPECT_EQ(c40.num_bins(), 40);

  data::FbankOptions window;
  window.window = data::FbankWindow::Povey;
  EXPECT_NE(data::FeatureCache::cache_file(m, window, dir / "cache"), base.file());
  data::FbankOptions shift;
  shift.frame_shift_ms = 10.000000001;
  EXPECT_NE(data::FeatureCache::cache_file(m, shift, dir / "cache"), base.file());

  // An edited manifest (one transcript) is a different cache.
  {
    std::ifstream in(tsv);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find("say number 3"), 12, "say number 9");
    test::write_text(tsv, text);
  }
  const data::SpeechManifest edited = data::SpeechManifest::read(tsv);
  EXPECT_NE(data::FeatureCache::cache_file(edited, {}, dir / "cache"), base.file());

  // A rewritten audio file (new mtime and size) is a different cache.
  const fs::path old_file = data::FeatureCache::cache_file(m, {}, dir / "cache");
  EXPECT_EQ(old_file, base.file());
  const std::vector<float> beep(4000, 0.25f);
  data::write_audio(m[2].audio, beep, 1, 16000, data::SampleFormat::PCM_16);
  EXPECT_NE(data::FeatureCache::cache_file(m, {}, dir / "cache"), old_file);
}

TEST(FeatureCache, CorruptCacheFileIsRebuilt) {
  SpeechTempDir dir("cache_corrupt");
  const data::SpeechManifest m = data::SpeechManifest::read(test::write_tiny_corpus(dir.path));
  const data::FeatureCache built = data::FeatureCache::build_or_load(m, {}, dir / "cache", 2);
  const auto size = fs::file_size(built.file());
  fs::resize_file(built.file(), size / 2);
  const data::FeatureCache again = data::FeatureCache::build_or_load(m, {}, dir / "cache", 2);
  EXPECT_TRUE(again.was_built());
  EXPECT_EQ(fs::file_size(again.file()), size);
  // `built` reads the file truncated under it; compare with an intact build instead.
  EXPECT_TRUE(test::same_features(data::FeatureCache::build_or_load(m, {}, dir / "reference", 2), again));
}

// The message of the error that building the cache of m throws ("" if none).
std::string build_error(const SpeechTempDir& dir, const data::SpeechManifest& m) {
  try {
    data::FeatureCache::build_or_load(m, {}, dir / "cache", 2);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(FeatureCache, MissingOrCorruptAudioFailsNamingPathAndLine) {
  SpeechTempDir dir("cache_bad_audio");
  const data::SpeechManifest m0 = data::SpeechManifest::read(test::write_tiny_corpus(dir.path));
  const std::string manifest = m0.path().string();

  fs::remove(m0[4].audio);  // manifest line 6
  std::string e = build_error(dir, m0);
  EXPECT_NE(e.find(manifest + ":6:"), std::string::npos) << e;
  EXPECT_NE(e.find(m0[4].audio.string()), std::string::npos) << e;
  EXPECT_TRUE(cache_files(dir / "cache").empty()) << "a failed build left a file";

  test::write_text(m0[4].audio, "RIFF....WAVEfmt garbage, not a wave file");
  const data::SpeechManifest m1 = data::SpeechManifest::read(m0.path());
  e = build_error(dir, m1);
  EXPECT_NE(e.find(manifest + ":6:"), std::string::npos) << e;
  EXPECT_NE(e.find(m0[4].audio.string()), std::string::npos) << e;
  EXPECT_TRUE(cache_files(dir / "cache").empty()) << "a failed build left a file";
}

TEST(FeatureCache, EmptyManifestIsAnError) {
  SpeechTempDir dir("cache_empty");
  test::write_text(dir / "m.tsv", test::kManifestHeader);
  EXPECT_THROW(
      data::FeatureCache::build_or_load(data::SpeechManifest::read(dir / "m.tsv"), {}, dir / "cache", 1),
      ValueError);
}

}  // namespace
}  // namespace cw
