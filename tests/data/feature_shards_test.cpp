// Tests of data/feature_shards.h through data/feature_cache.h: a cache cut into many small shards
// reads back exactly the frames Fbank computes; a truncated, foreign or misplaced shard is
// reported naming the file and rebuilt from there; a failed build resumes at its first missing
// shard computing only the missing rows; the loader gives the same batches from many shards as from
// one, and a rank's slice of a batch equals those rows of the whole batch.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "core/safetensors.h"
#include "data/audio_io.h"
#include "data/feature_cache.h"
#include "data/speech_loader.h"
#include "speech_test_corpus.h"

namespace cw {
namespace {

using test::SpeechTempDir;
namespace fs = std::filesystem;

constexpr int64_t kBins = 80;
// 187 frames of 80 bins a shard: the 13 tiny utterances (18-178 frames) fill 8 or so shards.
constexpr int64_t kSmallShard = 60000;

data::FrameSource small_shards(const data::SpeechManifest& m) {
  data::FrameSource s = data::FeatureCache::fbank_source(m, {}, 2);
  s.shard_bytes = kSmallShard;
  return s;
}

int64_t shard_files(const fs::path& dir) {
  int64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().extension() == ".safetensors";
  return n;
}

TEST(FeatureShards, ManySmallShardsReadBackWhatFbankComputes) {
  SpeechTempDir dir("shards_roundtrip");
  const data::SpeechManifest m = data::SpeechManifest::read(test::write_tiny_corpus(dir.path));
  const data::FeatureCache cache = data::FeatureCache::build_or_load(m, small_shards(m), dir / "cache");
  const data::FeatureShards& shards = cache.shards();
  ASSERT_TRUE(shards.complete());
  EXPECT_GE(shards.num_shards(), 5);
  EXPECT_EQ(shard_files(dir / "cache"), shards.num_shards());  // no temporary file left behind
  const data::Fbank fbank;
  for (int64_t i = 0; i < m.size(); ++i) {
    const Tensor expect = fbank.compute(data::load_audio(m[i].audio, 16000));
    ASSERT_EQ(cache.features(i).shape(), expect.shape()) << m[i].id;
    EXPECT_EQ(cache.features(i).to_vector<float>(), expect.to_vector<float>()) << m[i].id;  // bit-exact
    // A crop reads the first frames only.
    const Tensor head = cache.features(i, 7);
    ASSERT_EQ(head.shape(), (Shape{std::min<int64_t>(7, expect.size(0)), kBins}));
    EXPECT_EQ(head.to_vector<float>(), expect.narrow(0, 0, head.size(0)).contiguous().to_vector<float>());
  }
  // Each shard holds at most kSmallShard bytes of frames, or one row larger than that; and it is
  // a plain safetensors file.
  int64_t rows = 0;
  for (int64_t j = 0; j < shards.num_shards(); ++j) {
    const SafetensorsFile st = SafetensorsFile::open(shards.file(j).string());
    const int64_t frames = st.info("features").shape[0], shard_rows = st.info("offsets").shape[0] - 1;
    EXPECT_TRUE(frames * kBins * 4 <= kSmallShard || shard_rows == 1) << shards.file(j);
    EXPECT_EQ(st.metadata().at("first_row"), std::to_string(rows));
    rows += shard_rows;
  }
  EXPECT_EQ(rows, m.size());

  // A second run opens the shards and computes nothing.
  const data::FeatureCache again = data::FeatureCache::build_or_load(m, small_shards(m), dir / "cache");
  EXPECT_FALSE(again.was_built());
  EXPECT_TRUE(test::same_features(cache, again));
}

TEST(FeatureShards, BadShardIsNamedAndRebuiltFromThere) {
  SpeechTempDir dir("shards_corrupt");
  const data::SpeechManifest m = data::SpeechManifest::read(test::write_tiny_corpus(dir.path));
  const data::FeatureCache built = data::FeatureCache::build_or_load(m, small_shards(m), dir / "cache");
  const data::FeatureShards& shards = built.shards();
  ASSERT_GE(shards.num_shards(), 4);
  const data::ShardSpec& spec = shards.spec();
  const fs::path two = shards.file(2), three = shards.file(3);
  const auto size = fs::file_size(two);
  int64_t rows_before_two = 0;  // rows of shards 0 and 1
  {
    const data::FeatureShards first_two = [&] {
      fs::rename(two, dir / "two.keep");
      const data::FeatureShards s = data::FeatureShards::open(spec);
      fs::rename(dir / "two.keep", two);
      return s;
    }();
    EXPECT_FALSE(first_two.complete());
    EXPECT_EQ(first_two.num_shards(), 2);
    rows_before_two = first_two.rows_covered();
  }

  // Truncated: the open stops before it, naming it.
  fs::resize_file(two, size - 100);
  std::string why;
  data::FeatureShards opened = data::FeatureShards::open(spec, &why);
  EXPECT_EQ(opened.rows_covered(), rows_before_two);
  EXPECT_NE(why.find(two.string()), std::string::npos) << why;

  // A valid shard in the wrong place (shard 3's file as shard 2): named, with what it says it is.
  fs::copy_file(three, two, fs::copy_options::overwrite_existing);
  opened = data::FeatureShards::open(spec, &why);
  EXPECT_EQ(opened.rows_covered(), rows_before_two);
  EXPECT_NE(why.find(two.string()), std::string::npos) << why;
  EXPECT_NE(why.find("expected shard 2"), std::string::npos) << why;

  // Another corpus' key.
  data::ShardSpec other = spec;
  other.key += "x";
  data::FeatureShards::open(other, &why);
  EXPECT_NE(why.find(shards.file(0).string()), std::string::npos) << why;
  EXPECT_NE(why.find("key"), std::string::npos) << why;

  // build_or_load rebuilds from shard 2 on, computing only those rows.
  std::atomic<int64_t> calls{0};
  data::FrameSource counted = small_shards(m);
  counted.compute = [inner = counted.compute, &calls](int64_t i) {
    ++calls;
    return inner(i);
  };
  const data::FeatureCache again = data::FeatureCache::build_or_load(m, counted, dir / "cache");
  EXPECT_TRUE(again.was_built());
  EXPECT_EQ(again.computed_utterances(), m.size() - rows_before_two);
  EXPECT_EQ(calls.load(), m.size() - rows_before_two);
  EXPECT_EQ(fs::file_size(two), size);
  // (`built` still reads the file truncated and overwritten in place under it: compare with an
  // intact build.)
  EXPECT_TRUE(
      test::same_features(data::FeatureCache::build_or_load(m, small_shards(m), dir / "reference"), again));

  // A shard that shrinks under an open cache: reading one of its rows is an error naming it.
  const data::FeatureCache open_cache = data::FeatureCache::build_or_load(m, small_shards(m), dir / "cache");
  fs::resize_file(two, 200);
  try {
    open_cache.features(rows_before_two);
    ADD_FAILURE() << "reading a row of a truncated shard did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(two.string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(open_cache.features(0).to_vector<float>(), built.features(0).to_vector<float>());
}

TEST(FeatureShards, FailedBuildResumesAtTheFirstMissingShard) {
  SpeechTempDir dir("shards_resume");
  const data::SpeechManifest m = data::SpeechManifest::read(test::write_tiny_corpus(dir.path));
  const int64_t fail_at = 9;
  data::FrameSource failing = small_shards(m);
  failing.compute = [inner = failing.compute, fail_at](int64_t i) {
    if (i == fail_at) throw Error("simulated crash");
    return inner(i);
  };
  try {
    data::FeatureCache::build_or_load(m, failing, dir / "cache");
    ADD_FAILURE() << "the failing build did not throw";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(m.path().string() + ":" + std::to_string(m[fail_at].line) + ":"), std::string::npos)
        << what;
    EXPECT_NE(what.find("simulated crash"), std::string::npos) << what;
  }
  // The complete shards before the failing row are on disk; the one holding it is not.
  const fs::path first = data::FeatureCache::cache_file(m, {}, dir / "cache");
  const std::string name = first.string();
  const data::ShardSpec spec{name.substr(0, name.size() - std::string("-00000.safetensors").size()),
                             data::FeatureCache::cache_key(m, data::FbankOptions{}), m.size(), kBins};
  const int64_t kept = data::FeatureShards::open(spec).rows_covered();
  EXPECT_GT(kept, 0);
  EXPECT_LE(kept, fail_at);
  EXPECT_GE(shard_files(dir / "cache"), 2);

  data::FrameSource good = small_shards(m);
  std::atomic<int64_t> calls{0};
  good.compute = [inner = good.compute, &calls](int64_t i) {
    ++calls;
    return inner(i);
  };
  const data::FeatureCache resumed = data::FeatureCache::build_or_load(m, good, dir / "cache");
  EXPECT_TRUE(resumed.was_built());
  EXPECT_EQ(resumed.computed_utterances(), m.size() - kept);
  EXPECT_EQ(calls.load(), m.size() - kept);
  // The same frames as an uninterrupted build.
  SpeechTempDir fresh("shards_resume_fresh");
  EXPECT_TRUE(
      test::same_features(resumed, data::FeatureCache::build_or_load(m, small_shards(m), fresh / "cache")));
}

data::SpeechLoaderOptions augmented(int64_t batch) {
  data::SpeechLoaderOptions o;
  o.batch_size = batch;
  o.seed = 11;
  o.bucket_window = 2;
  o.spec_augment = true;
  o.spec_augment_options.max_time_width = 20;
  o.max_frames = 120;
  o.num_workers = 2;
  return o;
}

bool same_batch(const data::SpeechBatch& a, const data::SpeechBatch& b) {
  return a.indices == b.indices && a.transcripts == b.transcripts &&
         a.features.shape() == b.features.shape() &&
         a.features.to_vector<float>() == b.features.to_vector<float>() &&
         a.lengths.to_vector<int64_t>() == b.lengths.to_vector<int64_t>();
}

TEST(FeatureShards, LoaderGivesTheSameBatchesFromManyShardsAsFromOne) {
  SpeechTempDir dir("shards_loader");
  const data::SpeechManifest m = data::SpeechManifest::read(test::write_tiny_corpus(dir.path));
  auto one =
      std::make_shared<const data::FeatureCache>(data::FeatureCache::build_or_load(m, {}, dir / "one", 2));
  auto many = std::make_shared<const data::FeatureCache>(
      data::FeatureCache::build_or_load(m, small_shards(m), dir / "many"));
  ASSERT_EQ(one->shards().num_shards(), 1);
  ASSERT_GE(many->shards().num_shards(), 5);
  data::SpeechLoader a(one, augmented(4)), b(many, augmented(4));
  for (int k = 0; k < 3 * a.batches_per_epoch(); ++k)
    ASSERT_TRUE(same_batch(a.next(), b.next())) << "batch " << k;
  // Resume: a seek lands on the same batch.
  a.seek(2, 1);
  b.seek(2, 1);
  EXPECT_TRUE(same_batch(a.next(), b.next()));
}

TEST(FeatureShards, RankSliceEqualsThoseRowsOfTheWholeBatch) {
  SpeechTempDir dir("shards_slice");
  const data::SpeechManifest m = data::SpeechManifest::read(test::write_tiny_corpus(dir.path));
  auto cache = std::make_shared<const data::FeatureCache>(
      data::FeatureCache::build_or_load(m, small_shards(m), dir / "cache"));
  const data::SpeechLoader whole(cache, augmented(5));
  // Two ranks' slices of a batch of 5: rows [0, 3) and [3, 5).
  for (const auto& [offset, count] : {std::pair<int64_t, int64_t>{0, 3}, {3, 2}}) {
    data::SpeechLoaderOptions o = augmented(5);
    o.slice_offset = offset;
    o.slice_count = count;
    const data::SpeechLoader part(cache, o);
    for (int64_t e = 0; e < 2; ++e)
      for (int64_t b = 0; b < whole.batches_per_epoch(); ++b) {
        const data::SpeechBatch w = whole.batch(e, b), p = part.batch(e, b);
        EXPECT_EQ(p.indices, w.indices);
        EXPECT_EQ(p.transcripts, w.transcripts);
        EXPECT_EQ(p.slice_offset, offset);
        ASSERT_EQ(p.features.shape(), (Shape{count, w.features.size(1), kBins}));
        EXPECT_EQ(p.features.to_vector<float>(),
                  w.features.narrow(0, offset, count).contiguous().to_vector<float>())
            << "epoch " << e << " batch " << b;
        EXPECT_EQ(p.lengths.to_vector<int64_t>(),
                  w.lengths.narrow(0, offset, count).contiguous().to_vector<int64_t>());
      }
  }
  data::SpeechLoaderOptions bad = augmented(5);
  bad.slice_offset = 5;
  bad.slice_count = 1;
  EXPECT_THROW(data::SpeechLoader(cache, bad), ValueError);
}

TEST(FeatureShards, WriterRejectsWrongRowsAndAnEarlyFinish) {
  SpeechTempDir dir("shards_writer");
  data::ShardWriter w({dir / "c", "key", 2, 3}, 0, 0, 1000);
  EXPECT_THROW(w.append(Tensor::empty({4, 2}, DType::F32)), ShapeError);
  w.append(Tensor::empty({4, 3}, DType::F32));
  EXPECT_THROW(w.finish(), ValueError);  // one of two rows
}

}  // namespace
}  // namespace cw
