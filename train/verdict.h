// The few lines a newcomer reads at the end of a speech-text run: each zero-shot number beside
// chance and beside the text-only upper bound (the frozen text tower on each test utterance's own
// transcript, scored with the same prompts), and whether the tower transfers at all. Part of train/.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "train/evaluator.h"
#include "train/frozen_text_cache.h"

namespace cw::train {

// What a model that has learnt nothing scores: a uniform guess among the classes (1 / classes)
// and among the retrieval candidates (1 / n, the evaluated pairs).
struct ChanceLevels {
  double intent = 0, keywords = 0, retrieval_r1 = 0;
  nlohmann::json to_json() const;
  // "chance: intent 2.0%, keywords 8.3%, R@1 0.50%", for each evaluation's text.
  std::string line() const;
};
ChanceLevels chance_levels(const SpeechTextData& data, const EvalResult& result);

struct Verdict {
  EvalResult upper_bound;  // the text tower on the transcripts
  double intent_chance = 0, keyword_chance = 0, retrieval_r1_chance = 0;
  std::string text;     // three lines
  nlohmann::json json;  // chance and bound beside each number, for eval_final.json
};

// The text-only upper bound: every benchmark scored with the text tower's embedding of each test
// utterance's own transcript in place of the speech embedding.
EvalResult evaluate_text_bound(const SpeechTextData& data, const FrozenTextTower& text);

// The transcripts' embeddings are cached in <corpus>/text_embeddings like the others.
Verdict make_verdict(const EvalResult& result, const SpeechTextData& data, const FrozenTextTower& text);

}  // namespace cw::train
