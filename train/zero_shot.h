// Zero-shot evaluation math, on embeddings already computed: classification against class
// prompts (per template and as CLIP's prompt ensemble), retrieval recall@k both ways, and the
// paper's structure analysis (how well the trained tower's pairwise similarities follow the
// frozen tower's). Pure functions of tensors, so they are tested on hand-made cases. Part of
// train/; train/evaluator.h feeds it the towers' outputs.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cw::train {

// The rows of x (N, D) scaled to unit L2 norm (a zero row stays zero).
Tensor unit_rows(const Tensor& x);

struct ZeroShotScore {
  int64_t n = 0;                               // items scored
  double ensemble_accuracy = 0;                // class embedding = normalized mean over templates (CLIP)
  std::vector<double> per_template;            // accuracy with each template alone
  double mean = 0, std = 0, min = 0, max = 0;  // over per_template (std: population, ddof 0)
  nlohmann::json to_json() const;
};

// items (N, D) speech embeddings, labels (N) class indices in [0, C), class_embeddings: one
// (C, D) tensor per template (any norms; rows are normalized here). Prediction = argmax of the
// cosine (first index on ties). Throws ShapeError / IndexError on inconsistent inputs.
ZeroShotScore zero_shot_classify(const Tensor& items, const std::vector<int64_t>& labels,
                                 const std::vector<Tensor>& class_embeddings);

// The prompt ensemble's class embeddings (C, D) f64: the sum of each template's unit rows (a
// mean up to scale, which no cosine sees), as zero_shot_classify scores with.
Tensor ensemble_classes(const std::vector<Tensor>& class_embeddings);

// Each item's k best classes (index, cosine), best first, the first index on ties.
std::vector<std::vector<std::pair<int64_t, double>>> top_classes(const Tensor& items, const Tensor& classes,
                                                                 int64_t k);

struct RetrievalScore {
  int64_t n = 0;
  double speech_to_text_r1 = 0, speech_to_text_r5 = 0, speech_to_text_r10 = 0;
  double text_to_speech_r1 = 0, text_to_speech_r5 = 0, text_to_speech_r10 = 0;
  nlohmann::json to_json() const;
};

// speech (N, D) and text (N, D), pair i = (speech i, text i). Recall@k: the fraction of queries
// whose pair ranks in the top k by cosine, rank = 1 + #{j : s_j > s_pair} + #{j < i : s_j = s_pair}
// (a tie goes to the earlier candidate, as a stable sort would order them).
RetrievalScore retrieval_recall(const Tensor& speech, const Tensor& text);

// Pearson correlation between the off-diagonal entries of the cosine-similarity matrices of a
// (N, D) and b (N, D') (N >= 3): 1 when the trained tower's structure matches the frozen one's.
double similarity_structure_correlation(const Tensor& a, const Tensor& b);

}  // namespace cw::train
