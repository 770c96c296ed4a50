// The end-of-run verdict (see verdict.h).
#include "train/verdict.h"

#include <cmath>
#include <cstdio>

#include "core/ops.h"

namespace cw::train {

namespace {

// Above chance by more than two binomial standard deviations of a chance-level classifier on n
// items: a plain, conservative reading for a newcomer (EXPERIMENTS.md gives the seed statistics).
bool above_chance(double accuracy, double chance, int64_t n) {
  return n > 0 && accuracy > chance + 2.0 * std::sqrt(chance * (1 - chance) / static_cast<double>(n));
}

}  // namespace

ChanceLevels chance_levels(const SpeechTextData& data, const EvalResult& r) {
  ChanceLevels c;
  c.intent = 1.0 / static_cast<double>(data.intent_classes.labels.size());
  c.keywords = 1.0 / static_cast<double>(data.kws_classes.labels.size());
  c.retrieval_r1 = r.retrieval.n > 0 ? 1.0 / static_cast<double>(r.retrieval.n) : 0.0;
  return c;
}

nlohmann::json ChanceLevels::to_json() const {
  return {{"intent", intent}, {"keywords", keywords}, {"retrieval_r1", retrieval_r1}};
}

std::string ChanceLevels::line() const {
  char s[160];
  std::snprintf(s, sizeof s,
                "  chance (a uniform guess): intent %.1f%%, keywords %.1f%%, retrieval R@1 %.2f%%\n",
                100 * intent, 100 * keywords, 100 * retrieval_r1);
  return s;
}

EvalResult evaluate_text_bound(const SpeechTextData& data, const FrozenTextTower& text) {
  const std::filesystem::path cache_dir = data.corpus / "text_embeddings";
  return evaluate_embeddings(data, [&](const SpeechSplit& s, const std::vector<int64_t>& rows) {
    std::vector<std::string> sentences;
    for (const auto& u : s.manifest().utterances()) sentences.push_back(u.transcript);
    const Tensor all = embed_with_cache(text, sentences, cache_dir, s.name + "_transcripts").embeddings;
    return ops::index_select(all, 0, ops::from_vector(rows, {static_cast<int64_t>(rows.size())}));
  });
}

Verdict make_verdict(const EvalResult& r, const SpeechTextData& data, const FrozenTextTower& text) {
  Verdict v;
  v.upper_bound = evaluate_text_bound(data, text);
  const ChanceLevels chance = chance_levels(data, r);
  v.intent_chance = chance.intent;
  v.keyword_chance = chance.keywords;
  v.retrieval_r1_chance = chance.retrieval_r1;
  const bool intent_ok = above_chance(r.intent.ensemble_accuracy, v.intent_chance, r.intent.n);
  const bool kws_ok = above_chance(r.keywords.ensemble_accuracy, v.keyword_chance, r.keywords.n);
  char line[512];
  std::snprintf(line, sizeof line,
                "verdict: zero-shot intent %.1f%% (chance %.1f%%, text-only bound %.1f%%), keywords %.1f%% "
                "(chance %.1f%%, bound %.1f%%),\n"
                "         speech->text retrieval R@1 %.1f%% (chance %.2f%%, bound %.1f%%).\n",
                100 * r.intent.ensemble_accuracy, 100 * v.intent_chance,
                100 * v.upper_bound.intent.ensemble_accuracy, 100 * r.keywords.ensemble_accuracy,
                100 * v.keyword_chance, 100 * v.upper_bound.keywords.ensemble_accuracy,
                100 * r.retrieval.speech_to_text_r1, 100 * v.retrieval_r1_chance,
                100 * v.upper_bound.retrieval.speech_to_text_r1);
  v.text = line;
  v.text +=
      intent_ok || kws_ok
          ? "         The speech tower transfers: classes it never saw, given only as text, are found above "
            "chance (2 sigma); the gap to the bound is what speech costs.\n"
          : "         The speech tower does not transfer yet: zero-shot accuracy is within 2 sigma of "
            "chance (see EXPERIMENTS.md for why and what does).\n";
  v.json = {{"chance", chance.to_json()},
            {"text_only_upper_bound", v.upper_bound.to_json()},
            {"transfers", intent_ok || kws_ok}};
  return v;
}

}  // namespace cw::train
