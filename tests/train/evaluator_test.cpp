// The evaluator's batching (train/evaluator.h): batches bounded by padded frames embed every
// utterance as batches bounded by count alone do (up to float rounding: the padding changes the
// length of the sums), and a bound smaller than one utterance still embeds it, alone.
#include "train/evaluator.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/generator.h"
#include "core/ops.h"
#include "models/speech_text_model.h"

namespace cw {
namespace {

TEST(EmbedUtterances, FrameBoundedBatchesEqualCountBoundedBatches) {
  manual_seed(3);
  models::SpeechTextModel model(models::ConformerConfig::tiny(), 2.0, false);
  // Lengths from 9 to 60 frames of the tiny tower's 10 bins, in no order.
  const std::vector<int64_t> lengths = {20, 60, 9, 33, 47, 12, 58, 25};
  std::vector<Tensor> features;
  for (const int64_t t : lengths) features.push_back(ops::randn({t, 10}));
  auto features_of = [&](size_t i) { return features[i]; };

  const Tensor by_count =
      train::embed_utterances(model, features.size(), features_of, true, 8, "test");  // (8, 6)
  // 100 padded frames a batch: batches of 1 to 3 utterances, the 60-frame one with at most one other.
  const Tensor by_frames = train::embed_utterances(model, features.size(), features_of, true, 8, "test", 100);
  // 5 padded frames: below every utterance, so each goes alone.
  const Tensor alone = train::embed_utterances(model, features.size(), features_of, true, 8, "test", 5);
  ASSERT_EQ(by_count.shape(), (std::vector<int64_t>{8, 6}));
  ASSERT_EQ(by_frames.shape(), by_count.shape());
  ASSERT_EQ(alone.shape(), by_count.shape());
  EXPECT_LT(ops::amax(ops::abs(ops::sub(by_frames, by_count))).item(), 1e-5);
  EXPECT_LT(ops::amax(ops::abs(ops::sub(alone, by_count))).item(), 1e-5);
}

}  // namespace
}  // namespace cw
