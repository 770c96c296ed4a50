// Variable-length feature sequences (log-mel frames of utterances) padded into one batch, as the
// speech towers take it: the loader's batches, the evaluators' and the recognizers'. Part of data/.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace cw::data {

// Variable-length features padded into one batch, as a Conformer's subsampling front takes it.
struct FeatureBatch {
  Tensor features;  // f32 (B, T_max, F), frames past an utterance's length hold pad_value
  Tensor lengths;   // i64 (B), the number of real frames of each utterance
};

// Pads f32 (T_i, F) feature tensors (same F, any T_i >= 0) into a FeatureBatch. An empty list,
// a non-2-d tensor or differing F throws ShapeError naming the offending item.
FeatureBatch pad_features(const std::vector<Tensor>& features, double pad_value = 0.0);

}  // namespace cw::data
