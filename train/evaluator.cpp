// Zero-shot evaluation of a speech-text model (see evaluator.h).
#include "train/evaluator.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/ops.h"
#include "data/audio_normalize.h"
#include "data/feature_batch.h"
#include "train/progress.h"
#include "train/stopwatch.h"

namespace cw::train {
namespace {

std::vector<int64_t> spaced_rows(int64_t n, int64_t max_items) {
  std::vector<int64_t> rows;
  if (max_items <= 0 || max_items >= n) {
    for (int64_t i = 0; i < n; ++i) rows.push_back(i);
  } else {
    // evenly spaced, so a capped evaluation still sees every class (rows are sorted by id)
    for (int64_t k = 0; k < max_items; ++k) rows.push_back(k * n / max_items);
  }
  return rows;
}

template <class T>
std::vector<T> pick(const std::vector<T>& v, const std::vector<int64_t>& rows) {
  std::vector<T> out;
  for (int64_t r : rows) out.push_back(v[static_cast<size_t>(r)]);
  return out;
}

ZeroShotScore score_subset(const Tensor& emb, const std::vector<int64_t>& labels,
                           const std::vector<bool>& keep, const std::vector<Tensor>& classes) {
  std::vector<int64_t> idx, lab;
  for (size_t i = 0; i < keep.size(); ++i)
    if (keep[i]) {
      idx.push_back(static_cast<int64_t>(i));
      lab.push_back(labels[i]);
    }
  if (idx.empty()) return ZeroShotScore{};
  const Tensor sub = ops::index_select(emb, 0, ops::from_vector(idx, {static_cast<int64_t>(idx.size())}));
  return zero_shot_classify(sub, lab, classes);
}

}  // namespace

Tensor embed_utterances(models::SpeechTextModel& model, size_t count,
                        const std::function<Tensor(size_t)>& features_of, bool cmvn, int64_t batch_size,
                        const std::string& what, int64_t max_frames) {
  CW_CHECK(batch_size >= 1, ValueError, "embed_split: batch_size must be >= 1");
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  const int64_t max_input = model.speech->max_input_frames();
  ProgressMeter meter(what, "utterances", static_cast<int64_t>(count));
  std::vector<Tensor> parts, feats;
  int64_t longest = 0;  // of feats
  auto embed_batch = [&] {
    const data::FeatureBatch fb = data::pad_features(feats);
    // Features go to the model's device; the embeddings come back to the CPU for the metrics.
    const Tensor features = fb.features.to(model.logit_scale.device());
    parts.push_back(model.embed_speech(Variable(features), fb.lengths).data().to(Device::cpu()));
    meter.add(static_cast<int64_t>(feats.size()));
    feats.clear();
    longest = 0;
  };
  for (size_t i = 0; i < count; ++i) {
    Tensor f = features_of(i);
    if (max_input > 0 && f.size(0) > max_input) f = f.narrow(0, 0, max_input);  // the tower's first frames
    const int64_t n = static_cast<int64_t>(feats.size());
    const bool full =
        n == batch_size || (max_frames > 0 && (n + 1) * std::max(longest, f.size(0)) > max_frames);
    if (n > 0 && full) embed_batch();
    longest = std::max(longest, f.size(0));
    feats.push_back(cmvn ? data::utterance_cmvn(f) : f);
  }
  if (!feats.empty()) embed_batch();
  model.train(was_training);
  return parts.empty() ? Tensor() : ops::concat(parts, 0);
}

Tensor embed_split(models::SpeechTextModel& model, const SpeechSplit& split, const std::vector<int64_t>& rows,
                   int64_t batch_size, int64_t max_frames) {
  return embed_utterances(
      model, rows.size(), [&](size_t i) { return split.features->features(rows[i]); }, split.cmvn, batch_size,
      "eval: " + split.name, max_frames);
}

EvalResult evaluate(models::SpeechTextModel& model, const SpeechTextData& data, int64_t batch_size,
                    int64_t max_items, int64_t max_frames) {
  return evaluate_embeddings(
      data,
      [&](const SpeechSplit& s, const std::vector<int64_t>& rows) {
        return embed_split(model, s, rows, batch_size, max_frames);
      },
      max_items);
}

EvalResult evaluate_embeddings(const SpeechTextData& data, const SplitEmbedder& embed_rows,
                               int64_t max_items) {
  const auto t0 = Clock::now();
  EvalResult r;
  {
    const auto rows = spaced_rows(data.intent.size(), max_items);
    const Tensor e = embed_rows(data.intent, rows);
    r.intent = zero_shot_classify(e, pick(data.intent.labels, rows), data.intent_classes.embeddings);
  }
  {
    const auto rows = spaced_rows(data.kws.size(), max_items);
    const Tensor e = embed_rows(data.kws, rows);
    const auto labels = pick(data.kws.labels, rows);
    const std::vector<bool> human = pick(data.kws.human, rows);
    std::vector<bool> all(rows.size(), true), synth(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) synth[i] = !human[i];
    r.keywords = score_subset(e, labels, all, data.kws_classes.embeddings);
    r.keywords_synthetic = score_subset(e, labels, synth, data.kws_classes.embeddings);
    r.keywords_human = score_subset(e, labels, human, data.kws_classes.embeddings);
  }
  {
    const auto rows = spaced_rows(data.retrieval.size(), max_items);
    const Tensor e = embed_rows(data.retrieval, rows);
    const Tensor t = ops::index_select(data.retrieval_text, 0,
                                       ops::from_vector(rows, {static_cast<int64_t>(rows.size())}));
    r.retrieval = retrieval_recall(e, t);
    if (rows.size() >= 3) r.structure_correlation = similarity_structure_correlation(e, t);
  }
  r.seconds = seconds_since(t0);
  return r;
}

nlohmann::json EvalResult::to_json() const {
  return {{"intent", intent.to_json()},
          {"keywords", keywords.to_json()},
          {"keywords_synthetic", keywords_synthetic.to_json()},
          {"keywords_human", keywords_human.to_json()},
          {"retrieval", retrieval.to_json()},
          {"structure_correlation", structure_correlation},
          {"seconds", seconds}};
}

std::string EvalResult::table() const {
  std::ostringstream s;
  char line[256];
  auto zs = [&](const char* name, const ZeroShotScore& z) {
    std::snprintf(
        line, sizeof line,
        "  %-20s n=%-5lld ensemble %6.2f%%   templates mean %6.2f%% std %5.2f min %6.2f%% max %6.2f%%\n",
        name, static_cast<long long>(z.n), 100 * z.ensemble_accuracy, 100 * z.mean, 100 * z.std, 100 * z.min,
        100 * z.max);
    s << line;
  };
  zs("intent", intent);
  zs("keywords (all)", keywords);
  zs("keywords synthetic", keywords_synthetic);
  zs("keywords human", keywords_human);
  std::snprintf(line, sizeof line,
                "  %-20s n=%-5lld speech->text R@1 %5.1f%% R@5 %5.1f%% R@10 %5.1f%% | text->speech R@1 "
                "%5.1f%% R@5 %5.1f%% R@10 %5.1f%%\n",
                "retrieval", static_cast<long long>(retrieval.n), 100 * retrieval.speech_to_text_r1,
                100 * retrieval.speech_to_text_r5, 100 * retrieval.speech_to_text_r10,
                100 * retrieval.text_to_speech_r1, 100 * retrieval.text_to_speech_r5,
                100 * retrieval.text_to_speech_r10);
  s << line;
  std::snprintf(line, sizeof line, "  %-20s %.4f (Pearson, off-diagonal cosines, speech vs frozen text)\n",
                "structure corr", structure_correlation);
  s << line;
  return s.str();
}

}  // namespace cw::train
