// Zero-shot metrics (see zero_shot.h). Everything runs in f64 on the CPU: N is at most a few
// thousand here, and the numbers are reported, so exactness beats speed.
#include "train/zero_shot.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/ops.h"

namespace cw::train {
namespace {

// Cosine similarity matrix (N, M) in f64 of a (N, D) and b (M, D).
Tensor cosine(const Tensor& a, const Tensor& b) {
  return ops::matmul(unit_rows(a), unit_rows(b).t()).contiguous();
}

}  // namespace

Tensor unit_rows(const Tensor& x) {
  CW_CHECK(x.dim() == 2, ShapeError, "unit_rows: expected (N, D), got ", shape_str(x.shape()));
  return ops::l2_normalize_rows(x.to(DType::F64), 1e-12).unit;
}

Tensor ensemble_classes(const std::vector<Tensor>& class_embeddings) {
  CW_CHECK(!class_embeddings.empty(), ValueError, "ensemble_classes: no templates");
  Tensor mean = ops::zeros({class_embeddings[0].size(0), class_embeddings[0].size(1)}, DType::F64);
  for (const auto& e : class_embeddings) mean = ops::add(mean, unit_rows(e));
  return mean;
}

std::vector<std::vector<std::pair<int64_t, double>>> top_classes(const Tensor& items, const Tensor& classes,
                                                                 int64_t k) {
  const Tensor cos = cosine(items, classes);  // (N, C) f64
  const int64_t n = cos.size(0), c = cos.size(1);
  const double* p = cos.data<double>();
  std::vector<std::vector<std::pair<int64_t, double>>> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> order(static_cast<size_t>(c));
    for (int64_t j = 0; j < c; ++j) order[static_cast<size_t>(j)] = j;
    // Descending cosine, the first index on ties (as argmax).
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t x, int64_t y) { return p[i * c + x] > p[i * c + y]; });
    for (int64_t j = 0; j < std::min(k, c); ++j)
      out[static_cast<size_t>(i)].emplace_back(order[static_cast<size_t>(j)],
                                               p[i * c + order[static_cast<size_t>(j)]]);
  }
  return out;
}

nlohmann::json ZeroShotScore::to_json() const {
  return {{"n", n},
          {"ensemble_accuracy", ensemble_accuracy},
          {"per_template", per_template},
          {"template_mean", mean},
          {"template_std", std},
          {"template_min", min},
          {"template_max", max}};
}

ZeroShotScore zero_shot_classify(const Tensor& items, const std::vector<int64_t>& labels,
                                 const std::vector<Tensor>& class_embeddings) {
  CW_CHECK(items.dim() == 2, ShapeError, "zero_shot_classify: items must be (N, D), got ",
           shape_str(items.shape()));
  const int64_t n = items.size(0);
  CW_CHECK(static_cast<int64_t>(labels.size()) == n, ShapeError, "zero_shot_classify: ", labels.size(),
           " labels for ", n, " items");
  CW_CHECK(!class_embeddings.empty(), ValueError, "zero_shot_classify: no templates");
  const int64_t c = class_embeddings[0].size(0);
  for (const auto& e : class_embeddings)
    CW_CHECK(e.dim() == 2 && e.size(0) == c && e.size(1) == items.size(1), ShapeError,
             "zero_shot_classify: class embeddings must all be (C, D) = (", c, ", ", items.size(1), "), got ",
             shape_str(e.shape()));
  for (int64_t y : labels)
    CW_CHECK(y >= 0 && y < c, IndexError, "zero_shot_classify: label ", y, " outside [0, ", c, ")");

  auto accuracy = [&](const Tensor& classes) {
    if (n == 0) return 0.0;
    const std::vector<int64_t> pred = ops::argmax(cosine(items, classes), 1).to_vector<int64_t>();
    int64_t hit = 0;
    for (int64_t i = 0; i < n; ++i) hit += pred[i] == labels[i];
    return static_cast<double>(hit) / static_cast<double>(n);
  };
  ZeroShotScore s;
  s.n = n;
  for (const auto& e : class_embeddings) s.per_template.push_back(accuracy(e));
  s.ensemble_accuracy = accuracy(ensemble_classes(class_embeddings));
  const double k = static_cast<double>(s.per_template.size());
  s.min = *std::min_element(s.per_template.begin(), s.per_template.end());
  s.max = *std::max_element(s.per_template.begin(), s.per_template.end());
  for (double a : s.per_template) s.mean += a / k;
  for (double a : s.per_template) s.std += (a - s.mean) * (a - s.mean) / k;
  s.std = std::sqrt(s.std);
  return s;
}

nlohmann::json RetrievalScore::to_json() const {
  return {{"n", n},
          {"speech_to_text",
           {{"R@1", speech_to_text_r1}, {"R@5", speech_to_text_r5}, {"R@10", speech_to_text_r10}}},
          {"text_to_speech",
           {{"R@1", text_to_speech_r1}, {"R@5", text_to_speech_r5}, {"R@10", text_to_speech_r10}}}};
}

RetrievalScore retrieval_recall(const Tensor& speech, const Tensor& text) {
  CW_CHECK(speech.dim() == 2 && text.dim() == 2 && speech.size(0) == text.size(0) &&
               speech.size(1) == text.size(1),
           ShapeError, "retrieval_recall: speech ", shape_str(speech.shape()), " and text ",
           shape_str(text.shape()), " must both be (N, D)");
  const int64_t n = speech.size(0);
  RetrievalScore r;
  r.n = n;
  if (n == 0) return r;
  const Tensor s = cosine(speech, text);  // (N, N): row = speech query, column = text candidate
  const double* p = s.data<double>();
  std::vector<int64_t> rank_s2t(n, 1), rank_t2s(n, 1);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (j == i) continue;
      rank_s2t[i] += p[i * n + j] > p[i * n + i] || (p[i * n + j] == p[i * n + i] && j < i);
      rank_t2s[i] += p[j * n + i] > p[i * n + i] || (p[j * n + i] == p[i * n + i] && j < i);
    }
  auto recall = [&](const std::vector<int64_t>& rank, int64_t k) {
    return static_cast<double>(std::count_if(rank.begin(), rank.end(), [k](int64_t x) { return x <= k; })) /
           static_cast<double>(n);
  };
  r.speech_to_text_r1 = recall(rank_s2t, 1);
  r.speech_to_text_r5 = recall(rank_s2t, 5);
  r.speech_to_text_r10 = recall(rank_s2t, 10);
  r.text_to_speech_r1 = recall(rank_t2s, 1);
  r.text_to_speech_r5 = recall(rank_t2s, 5);
  r.text_to_speech_r10 = recall(rank_t2s, 10);
  return r;
}

double similarity_structure_correlation(const Tensor& a, const Tensor& b) {
  CW_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(0) == b.size(0) && a.size(0) >= 3, ShapeError,
           "similarity_structure_correlation: a ", shape_str(a.shape()), " and b ", shape_str(b.shape()),
           " must be (N, *) with the same N >= 3");
  const int64_t n = a.size(0);
  const Tensor sa = cosine(a, a), sb = cosine(b, b);
  const double *x = sa.data<double>(), *y = sb.data<double>();
  double mx = 0, my = 0;
  const double m = static_cast<double>(n * (n - 1));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i != j) {
        mx += x[i * n + j] / m;
        my += y[i * n + j] / m;
      }
  double sxy = 0, sxx = 0, syy = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i != j) {
        const double dx = x[i * n + j] - mx, dy = y[i * n + j] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
      }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
}

}  // namespace cw::train
