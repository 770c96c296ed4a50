// Tests of data/speech_loader.h: batch shapes, lengths and zero padding, every row once per
// epoch, determinism whatever the number of worker threads, exact resume with seek(), SpecAugment
// only when enabled, length bucketing, cropping, tokenized text and option errors.
#include "data/speech_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "core/error.h"
#include "data/audio_normalize.h"
#include "speech_test_corpus.h"

namespace cw {
namespace {

using test::SpeechTempDir;

// One corpus (13 utterances of 0.2 .. 1.8 s) and its cache, shared by the tests of this file.
class SpeechLoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new SpeechTempDir("loader");
    const data::SpeechManifest m = data::SpeechManifest::read(test::write_tiny_corpus(dir_->path));
    cache_ = std::make_shared<const data::FeatureCache>(
        data::FeatureCache::build_or_load(m, {}, *dir_ / "cache", 2));
  }
  static void TearDownTestSuite() {
    cache_.reset();
    delete dir_;
  }
  static SpeechTempDir* dir_;
  static std::shared_ptr<const data::FeatureCache> cache_;
};
SpeechTempDir* SpeechLoaderTest::dir_ = nullptr;
std::shared_ptr<const data::FeatureCache> SpeechLoaderTest::cache_;

bool same_batch(const data::SpeechBatch& a, const data::SpeechBatch& b) {
  return a.epoch == b.epoch && a.batch_in_epoch == b.batch_in_epoch && a.indices == b.indices &&
         a.features.shape() == b.features.shape() &&
         a.features.to_vector<float>() == b.features.to_vector<float>() &&
         a.lengths.to_vector<int64_t>() == b.lengths.to_vector<int64_t>();
}

data::SpeechLoaderOptions train_options(int workers) {
  data::SpeechLoaderOptions o;
  o.batch_size = 4;
  o.seed = 7;
  o.drop_last = false;
  o.bucket_window = 2;
  o.spec_augment = true;
  o.spec_augment_options.max_freq_width = 10;
  o.spec_augment_options.max_time_width = 20;
  o.num_workers = workers;
  o.prefetch_batches = 3;
  return o;
}

TEST_F(SpeechLoaderTest, ShapesLengthsAndZeroPadding) {
  data::SpeechLoaderOptions o;
  o.batch_size = 4;
  o.num_workers = 0;
  data::SpeechLoader loader(cache_, o);
  EXPECT_EQ(loader.batches_per_epoch(), 3);  // 13 rows, drop_last
  for (int step = 0; step < 3; ++step) {
    const data::SpeechBatch b = loader.next();
    EXPECT_EQ(b.epoch, 0);
    EXPECT_EQ(b.batch_in_epoch, step);
    ASSERT_EQ(b.indices.size(), 4u);
    ASSERT_EQ(b.features.dim(), 3);
    EXPECT_EQ(b.features.dtype(), DType::F32);
    EXPECT_EQ(b.lengths.dtype(), DType::I64);
    EXPECT_EQ(b.features.size(0), 4);
    EXPECT_EQ(b.features.size(2), 80);
    const auto lengths = b.lengths.to_vector<int64_t>();
    EXPECT_EQ(b.features.size(1), *std::max_element(lengths.begin(), lengths.end()));
    const auto x = b.features.to_vector<float>();
    const int64_t t_max = b.features.size(1);
    for (size_t i = 0; i < 4; ++i) {
      const int64_t row = b.indices[i];
      EXPECT_EQ(lengths[i], cache_->num_frames(row));
      EXPECT_EQ(b.transcripts[i], cache_->manifest()[row].transcript);
      // Real frames hold the utterance's CMVN-normalized features, padding holds zeros.
      const auto expect = data::utterance_cmvn(cache_->features(row)).to_vector<float>();
      for (int64_t t = 0; t < t_max; ++t)
        for (int64_t f = 0; f < 80; ++f) {
          const float v = x[(static_cast<int64_t>(i) * t_max + t) * 80 + f];
          if (t < lengths[i]) {
            ASSERT_EQ(v, expect[static_cast<size_t>(t * 80 + f)]) << "row " << row << " t " << t;
          } else {
            ASSERT_EQ(v, 0.0f) << "padding of row " << row << " at t " << t;
          }
        }
    }
    EXPECT_FALSE(b.text.input_ids.defined());
  }
  // Endless: the fourth batch is the first of epoch 1.
  const data::SpeechBatch b = loader.next();
  EXPECT_EQ(b.epoch, 1);
  EXPECT_EQ(b.batch_in_epoch, 0);
  EXPECT_EQ(loader.stats().batches, 4);
}

TEST_F(SpeechLoaderTest, EveryRowOncePerEpochAndEpochsReshuffle) {
  data::SpeechLoader loader(cache_, train_options(2));
  ASSERT_EQ(loader.batches_per_epoch(), 4);  // 13 rows, batches of 4, 4, 4, 1
  std::vector<int64_t> orders[2];
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::multiset<int64_t> seen;
    for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
      const data::SpeechBatch batch = loader.next();
      EXPECT_EQ(batch.epoch, epoch);
      seen.insert(batch.indices.begin(), batch.indices.end());
      orders[epoch].insert(orders[epoch].end(), batch.indices.begin(), batch.indices.end());
    }
    std::multiset<int64_t> all;
    for (int64_t i = 0; i < cache_->size(); ++i) all.insert(i);
    EXPECT_EQ(seen, all) << "epoch " << epoch;
  }
  EXPECT_NE(orders[0], orders[1]);

  // drop_last: every batch full, no row twice, floor(13 / 4) batches.
  data::SpeechLoaderOptions o = train_options(0);
  o.drop_last = true;
  data::SpeechLoader dropping(cache_, o);
  ASSERT_EQ(dropping.batches_per_epoch(), 3);
  std::set<int64_t> rows;
  for (int b = 0; b < 3; ++b) {
    const data::SpeechBatch batch = dropping.next();
    EXPECT_EQ(batch.indices.size(), 4u);
    rows.insert(batch.indices.begin(), batch.indices.end());
  }
  EXPECT_EQ(rows.size(), 12u);
}

TEST_F(SpeechLoaderTest, SameBatchesWithAnyNumberOfWorkers) {
  data::SpeechLoader sync(cache_, train_options(0)), one(cache_, train_options(1)),
      two(cache_, train_options(2));
  // Two and a half epochs, across the epoch boundaries.
  for (int step = 0; step < 10; ++step) {
    const data::SpeechBatch a = sync.next(), b = one.next(), c = two.next();
    EXPECT_TRUE(same_batch(a, b)) << "step " << step;
    EXPECT_TRUE(same_batch(a, c)) << "step " << step;
    EXPECT_TRUE(same_batch(a, sync.batch(a.epoch, a.batch_in_epoch))) << "step " << step;
  }
  // A different seed gives a different order.
  data::SpeechLoaderOptions o = train_options(0);
  o.seed = 8;
  EXPECT_NE(data::SpeechLoader(cache_, o).epoch_plan(0), sync.epoch_plan(0));
}

TEST_F(SpeechLoaderTest, SeekResumesExactly) {
  data::SpeechLoader reference(cache_, train_options(2));
  std::vector<data::SpeechBatch> run;
  for (int step = 0; step < 11; ++step) run.push_back(reference.next());

  // A fresh loader (a restarted job) seeking to each position.
  for (const int step : {0, 3, 5, 6, 10}) {
    data::SpeechLoader resumed(cache_, train_options(2));
    resumed.seek(run[static_cast<size_t>(step)].epoch, run[static_cast<size_t>(step)].batch_in_epoch);
    EXPECT_EQ(resumed.epoch() * resumed.batches_per_epoch() + resumed.batch_in_epoch(), step);
    for (int k = step; k < std::min(step + 3, 11); ++k)
      EXPECT_TRUE(same_batch(resumed.next(), run[static_cast<size_t>(k)]))
          << "resumed at " << step << ", step " << k;
  }
  // Seeking back on a loader that has prefetched ahead.
  reference.seek(0, 2);
  EXPECT_TRUE(same_batch(reference.next(), run[2]));
  EXPECT_TRUE(same_batch(reference.next(), run[3]));
  EXPECT_THROW(reference.seek(0, 4), IndexError);
  EXPECT_THROW(reference.seek(-1, 0), IndexError);
}

TEST_F(SpeechLoaderTest, SpecAugmentOnlyWhenEnabled) {
  data::SpeechLoaderOptions on = train_options(0), off = train_options(0);
  off.spec_augment = false;
  data::SpeechLoader augmented(cache_, on), plain(cache_, off);
  int64_t masked = 0;
  for (int step = 0; step < 4; ++step) {
    const data::SpeechBatch a = augmented.next(), p = plain.next();
    ASSERT_EQ(a.indices, p.indices);  // augmentation does not change the order
    ASSERT_EQ(a.features.shape(), p.features.shape());
    const auto x = a.features.to_vector<float>(), y = p.features.to_vector<float>();
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i] != y[i]) {
        ++masked;
        EXPECT_EQ(x[i], 0.0f);  // masks write the mean (0 after CMVN), nothing else changes
      }
    }
    // Without augmentation the batch is CMVN features only (checked cell by cell above).
    for (size_t i = 0; i < p.indices.size(); ++i) {
      const auto expect = data::utterance_cmvn(cache_->features(p.indices[i])).to_vector<float>();
      const int64_t t_max = p.features.size(1);
      for (size_t j = 0; j < expect.size(); ++j)
        ASSERT_EQ(y[static_cast<size_t>(static_cast<int64_t>(i) * t_max * 80) + j], expect[j]);
    }
  }
  EXPECT_GT(masked, 100);
  // The evaluation pass never augments.
  for (const data::SpeechBatch& b : data::eval_batches(cache_, 5))
    for (size_t i = 0; i < b.indices.size(); ++i) {
      const auto expect = data::utterance_cmvn(cache_->features(b.indices[i])).to_vector<float>();
      const auto x = b.features.to_vector<float>();
      const int64_t t_max = b.features.size(1);
      for (size_t j = 0; j < expect.size(); ++j)
        ASSERT_EQ(x[static_cast<size_t>(static_cast<int64_t>(i) * t_max * 80) + j], expect[j]);
    }
}

TEST_F(SpeechLoaderTest, EvalBatchesCoverAllRowsInOrder) {
  const std::vector<data::SpeechBatch> batches = data::eval_batches(cache_, 5);
  ASSERT_EQ(batches.size(), 3u);  // 5 + 5 + 3
  std::vector<int64_t> rows;
  for (const data::SpeechBatch& b : batches) rows.insert(rows.end(), b.indices.begin(), b.indices.end());
  std::vector<int64_t> expect(13);
  for (int64_t i = 0; i < 13; ++i) expect[static_cast<size_t>(i)] = i;
  EXPECT_EQ(rows, expect);
  EXPECT_EQ(batches[2].features.size(0), 3);
}

TEST_F(SpeechLoaderTest, BucketingReducesPadding) {
  auto padded_frames = [&](bool bucket) {
    data::SpeechLoaderOptions o = train_options(0);
    o.spec_augment = false;
    o.bucket_by_length = bucket;
    o.bucket_window = 100;  // one window: batches are runs of the sorted lengths
    data::SpeechLoader loader(cache_, o);
    int64_t padding = 0;
    for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
      const data::SpeechBatch batch = loader.next();
      for (const int64_t len : batch.lengths.to_vector<int64_t>()) padding += batch.features.size(1) - len;
    }
    return padding;
  };
  const int64_t bucketed = padded_frames(true), plain = padded_frames(false);
  EXPECT_LT(bucketed, plain);
  // Within a batch of a bucketed plan, rows are sorted by length.
  data::SpeechLoaderOptions o = train_options(0);
  o.bucket_window = 100;
  for (const auto& rows : data::SpeechLoader(cache_, o).epoch_plan(3))
    for (size_t i = 1; i < rows.size(); ++i)
      EXPECT_LE(cache_->num_frames(rows[i - 1]), cache_->num_frames(rows[i]));
}

TEST_F(SpeechLoaderTest, MaxFramesCropsFromTheStart) {
  data::SpeechLoaderOptions o = data::eval_options(13);
  o.max_frames = 50;
  o.normalization = "none";
  const data::SpeechBatch b = data::SpeechLoader(cache_, o).batch(0, 0);
  EXPECT_EQ(b.features.size(1), 50);
  const auto lengths = b.lengths.to_vector<int64_t>();
  const auto x = b.features.to_vector<float>();
  for (int64_t i = 0; i < 13; ++i) {
    EXPECT_EQ(lengths[static_cast<size_t>(i)], std::min<int64_t>(50, cache_->num_frames(i)));
    const auto raw = cache_->features(i).to_vector<float>();
    for (int64_t j = 0; j < lengths[static_cast<size_t>(i)] * 80; ++j)
      ASSERT_EQ(x[static_cast<size_t>(i * 50 * 80 + j)], raw[static_cast<size_t>(j)]);
  }
}

TEST_F(SpeechLoaderTest, TokenizesTranscripts) {
  auto tok = std::make_shared<const data::WordPieceTokenizer>(
      std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "say", "number", "1", "2", "3"});
  data::SpeechLoaderOptions o = data::eval_options(4);
  o.tokenizer = tok;
  const data::SpeechBatch b = data::SpeechLoader(cache_, o).batch(0, 0);
  ASSERT_TRUE(b.text.input_ids.defined());
  EXPECT_EQ(b.text.input_ids.size(0), 4);
  EXPECT_EQ(b.text.input_ids.to_vector<int64_t>(),
            tok->encode_batch(b.transcripts).input_ids.to_vector<int64_t>());
  // "say number 1" -> [CLS] say number 1 [SEP]
  EXPECT_EQ(tok->encode(b.transcripts[1]), (std::vector<int64_t>{2, 5, 6, 7, 3}));
}

TEST_F(SpeechLoaderTest, BadOptionsAreNamed) {
  auto error_of = [&](data::SpeechLoaderOptions o) -> std::string {
    try {
      data::SpeechLoader loader(cache_, o);
    } catch (const ValueError& e) {
      return e.what();
    }
    return "";
  };
  data::SpeechLoaderOptions o;
  o.batch_size = 0;
  EXPECT_NE(error_of(o).find("batch_size"), std::string::npos);
  o = {};
  o.batch_size = 14;  // > 13 rows with drop_last
  EXPECT_NE(error_of(o).find("gives no batch"), std::string::npos);
  o = {};
  o.normalization = "global";
  EXPECT_NE(error_of(o).find("normalization"), std::string::npos);
  o = {};
  o.prefetch_batches = 0;
  EXPECT_NE(error_of(o).find("prefetch_batches"), std::string::npos);
  o = {};
  o.max_frames = -1;
  EXPECT_NE(error_of(o).find("max_frames"), std::string::npos);
  EXPECT_THROW(data::SpeechLoader(nullptr, data::SpeechLoaderOptions{}), ValueError);
}

}  // namespace
}  // namespace cw
