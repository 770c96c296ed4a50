// Zero-shot evaluation math (train/zero_shot.h) on hand-made embeddings whose answers are worked
// out by hand in the comments: per-template and ensemble accuracy with their statistics,
// retrieval recall with the documented tie rule, the structure correlation, and the prompt
// templates of train/speech_text_data.h.
#include "train/zero_shot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "core/error.h"
#include "core/ops.h"
#include "train/speech_text_data.h"

namespace cw {
namespace {

using train::fill_template;
using train::retrieval_recall;
using train::similarity_structure_correlation;
using train::zero_shot_classify;

Tensor rows(const std::vector<std::vector<double>>& r) {
  std::vector<double> flat;
  for (const auto& row : r) flat.insert(flat.end(), row.begin(), row.end());
  return ops::from_vector(flat, {static_cast<int64_t>(r.size()), static_cast<int64_t>(r[0].size())});
}

// Row i = the unit vector e_{index[i]} in `dim` dimensions.
Tensor one_hot_rows(const std::vector<int64_t>& index, int64_t dim) {
  std::vector<std::vector<double>> r;
  for (int64_t k : index) {
    std::vector<double> row(static_cast<size_t>(dim), 0.0);
    row[static_cast<size_t>(k)] = 1.0;
    r.push_back(row);
  }
  return rows(r);
}

// Row i = (cos a_i, sin a_i), angles in degrees.
Tensor at_angles(const std::vector<double>& degrees) {
  std::vector<std::vector<double>> r;
  for (double d : degrees)
    r.push_back({std::cos(d * std::numbers::pi / 180), std::sin(d * std::numbers::pi / 180)});
  return rows(r);
}

TEST(ZeroShot, UnitRowsKeepsZeroRows) {
  const Tensor u = train::unit_rows(rows({{3, 4}, {0, 0}}).to(DType::F32)).contiguous();
  ASSERT_EQ(u.dtype(), DType::F64);
  const std::vector<double> v = u.to_vector<double>();
  EXPECT_NEAR(v[0], 0.6, 1e-15);
  EXPECT_NEAR(v[1], 0.8, 1e-15);
  EXPECT_EQ(v[2], 0.0);
  EXPECT_EQ(v[3], 0.0);
}

TEST(ZeroShot, PerTemplateEnsembleAndStatistics) {
  // Two classes in 2-D. Template 1 puts class 0 on e0 and class 1 on e1; template 2 swaps them;
  // template 3 is template 1 with other norms (rows are normalized, so it scores like 1).
  // Ensemble = sum of unit rows: class 0 -> (2, 1), class 1 -> (1, 2).
  const std::vector<Tensor> classes = {rows({{1, 0}, {0, 1}}), rows({{0, 1}, {1, 0}}),
                                       rows({{2, 0}, {0, 3}})};
  // item            label  T1 T2 T3 ensemble
  // (1, 0)          0      ok -  ok ok
  // (0, 1)          1      ok -  ok ok
  // (2, 0.5)        0      ok -  ok ok
  // (1, 0.9)        1      -  ok -  -     (closer to e0, and to (2, 1) than to (1, 2))
  const Tensor items = rows({{1, 0}, {0, 1}, {2, 0.5}, {1, 0.9}});
  const train::ZeroShotScore s = zero_shot_classify(items, {0, 1, 0, 1}, classes);
  EXPECT_EQ(s.n, 4);
  ASSERT_EQ(s.per_template.size(), 3u);
  EXPECT_DOUBLE_EQ(s.per_template[0], 0.75);
  EXPECT_DOUBLE_EQ(s.per_template[1], 0.25);
  EXPECT_DOUBLE_EQ(s.per_template[2], 0.75);
  EXPECT_DOUBLE_EQ(s.ensemble_accuracy, 0.75);
  EXPECT_NEAR(s.mean, 7.0 / 12.0, 1e-15);
  EXPECT_NEAR(s.std, std::sqrt(1.0 / 18.0), 1e-15);  // population std of {3/4, 1/4, 3/4}
  EXPECT_DOUBLE_EQ(s.min, 0.25);
  EXPECT_DOUBLE_EQ(s.max, 0.75);

  const nlohmann::json j = s.to_json();
  for (const char* k : {"n", "ensemble_accuracy", "per_template", "template_mean", "template_std",
                        "template_min", "template_max"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["per_template"].size(), 3u);

  // f32 inputs give the same answers (everything is scored in f64).
  std::vector<Tensor> classes32;
  for (const auto& c : classes) classes32.push_back(c.to(DType::F32));
  const train::ZeroShotScore s32 = zero_shot_classify(items.to(DType::F32), {0, 1, 0, 1}, classes32);
  EXPECT_EQ(s32.per_template, s.per_template);
  EXPECT_EQ(s32.ensemble_accuracy, s.ensemble_accuracy);
}

TEST(ZeroShot, EnsembleCanBeatEveryTemplate) {
  // Three classes on the unit circle at 0, 120, 240 degrees. Template A is rotated by +50
  // degrees, template B by -50: each alone misplaces items, but their average points straight at
  // the classes, so the ensemble gets every item right.
  const Tensor a = at_angles({50, 170, 290}), b = at_angles({-50, 70, 190});
  const Tensor items = at_angles({-55, 65, 185, 55, 175, 295});  // labels 0 1 2 0 1 2
  const std::vector<int64_t> labels = {0, 1, 2, 0, 1, 2};
  // Items at -55 / 65 / 185 lie 5 degrees from B's class and 15 from A's next class (A's 290,
  // 50, 170): B right, A wrong. Items at 55 / 175 / 295 lie 5 from A's class and 15 from B's
  // next one (B's 70, 190, 310): A right, B wrong. Every item lies 55 degrees from its ensemble
  // class (0, 120, 240) and 65 from the nearest other: the ensemble is right on all six.
  const train::ZeroShotScore s = zero_shot_classify(items, labels, {a, b});
  EXPECT_DOUBLE_EQ(s.per_template[0], 0.5);
  EXPECT_DOUBLE_EQ(s.per_template[1], 0.5);
  EXPECT_DOUBLE_EQ(s.ensemble_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(s.std, 0.0);
}

TEST(ZeroShot, ClassifyRejectsInconsistentInputs) {
  const Tensor items = rows({{1, 0}, {0, 1}});
  const Tensor classes = rows({{1, 0}, {0, 1}});
  EXPECT_THROW(zero_shot_classify(items, {0}, {classes}), ShapeError);     // 1 label, 2 items
  EXPECT_THROW(zero_shot_classify(items, {0, 2}, {classes}), IndexError);  // label 2 of 2 classes
  EXPECT_THROW(zero_shot_classify(items, {0, -1}, {classes}), IndexError);
  EXPECT_THROW(zero_shot_classify(items, {0, 1}, {}), ValueError);                              // no template
  EXPECT_THROW(zero_shot_classify(items, {0, 1}, {rows({{1, 0, 0}, {0, 1, 0}})}), ShapeError);  // D 3 vs 2
  EXPECT_THROW(zero_shot_classify(items, {0, 1}, {classes, rows({{1, 0}, {0, 1}, {1, 1}})}),
               ShapeError);  // C
}

TEST(ZeroShot, RetrievalOfAPermutationWithTies) {
  // speech_i = e_i (12 dims). text_i = e_i for i < 6; for i >= 6 the texts are a cycle:
  // text_i = e_{i+1}, text_11 = e_6. Cosines are exactly 0 or 1.
  std::vector<int64_t> text_index = {0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 6};
  const Tensor speech = one_hot_rows({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 12);
  const Tensor text = one_hot_rows(text_index, 12);
  const train::RetrievalScore r = retrieval_recall(speech, text);
  EXPECT_EQ(r.n, 12);
  // i < 6: the pair is the only 1 -> rank 1. i >= 6: the pair scores 0, one candidate scores 1
  // and every other 0 before i ties ahead of it: rank = 2 + #{j < i scoring 0, j != i}.
  // speech->text, query i >= 6: the 1 is text j = i - 1 (j = 11 for i = 6), so the ranks of
  //   i = 6..11 are 8, 8, 9, 10, 11, 12: R@1 = R@5 = 6/12, R@10 = 10/12.
  EXPECT_DOUBLE_EQ(r.speech_to_text_r1, 0.5);
  EXPECT_DOUBLE_EQ(r.speech_to_text_r5, 0.5);
  EXPECT_DOUBLE_EQ(r.speech_to_text_r10, 10.0 / 12.0);
  // text->speech, query i >= 6: the 1 is speech j = i + 1 (j = 6 for i = 11): ranks 8, 9, 10,
  //   11, 12, 12: R@10 = 9/12.
  EXPECT_DOUBLE_EQ(r.text_to_speech_r1, 0.5);
  EXPECT_DOUBLE_EQ(r.text_to_speech_r5, 0.5);
  EXPECT_DOUBLE_EQ(r.text_to_speech_r10, 9.0 / 12.0);

  const nlohmann::json j = r.to_json();
  EXPECT_DOUBLE_EQ(j["speech_to_text"]["R@10"].get<double>(), 10.0 / 12.0);
  EXPECT_DOUBLE_EQ(j["text_to_speech"]["R@10"].get<double>(), 9.0 / 12.0);
}

TEST(ZeroShot, RetrievalPerfectAndAllTied) {
  // Texts are the speech rows scaled and in a random-looking but distinct direction each: the
  // identity pairing wins every query.
  const Tensor speech = rows({{1, 0.1, 0}, {0, 1, 0.2}, {0.3, 0, 1}, {1, 1, 0}, {0, 1, 1}});
  const train::RetrievalScore perfect = retrieval_recall(speech, ops::mul(speech, 2.5));
  EXPECT_DOUBLE_EQ(perfect.speech_to_text_r1, 1.0);
  EXPECT_DOUBLE_EQ(perfect.text_to_speech_r1, 1.0);

  // Every embedding the same: everything ties, and a tie goes to the earlier candidate, so query
  // i has rank i + 1. With N = 12: R@1 = 1/12, R@5 = 5/12, R@10 = 10/12, both ways. (Rows of
  // ones normalize to exact halves, so every cosine is exactly 1 whatever the summation order.)
  std::vector<std::vector<double>> same(12, {1, 1, 1, 1});
  const train::RetrievalScore tied = retrieval_recall(rows(same), rows(same));
  EXPECT_DOUBLE_EQ(tied.speech_to_text_r1, 1.0 / 12.0);
  EXPECT_DOUBLE_EQ(tied.speech_to_text_r5, 5.0 / 12.0);
  EXPECT_DOUBLE_EQ(tied.speech_to_text_r10, 10.0 / 12.0);
  EXPECT_DOUBLE_EQ(tied.text_to_speech_r1, 1.0 / 12.0);
  EXPECT_DOUBLE_EQ(tied.text_to_speech_r10, 10.0 / 12.0);

  EXPECT_THROW(retrieval_recall(speech, rows({{1, 0, 0}})), ShapeError);  // N 5 vs 1
  EXPECT_THROW(retrieval_recall(speech, rows({{1, 0}, {0, 1}, {1, 1}, {1, 2}, {2, 1}})), ShapeError);  // D
}

TEST(ZeroShot, StructureCorrelationKnownValues) {
  // Identical embeddings, and the same structure in another basis and dimension with other row
  // norms: correlation 1.
  const Tensor a = rows({{1, 0.2, 0}, {0.5, 1, 0.1}, {0, 0.3, 1}, {1, 1, 1}});
  EXPECT_NEAR(similarity_structure_correlation(a, a), 1.0, 1e-12);
  // b = a rotated in the (x, y) plane, padded with a zero 4th coordinate, rows scaled.
  const double c = std::cos(0.7), s = std::sin(0.7);
  const std::vector<double> scale = {2, 0.5, 3, 1};
  std::vector<std::vector<double>> b;
  const std::vector<double> av = a.to_vector<double>();
  for (size_t i = 0; i < 4; ++i) {
    const double x = av[3 * i], y = av[3 * i + 1], z = av[3 * i + 2];
    b.push_back({scale[i] * (c * x - s * y), scale[i] * (s * x + c * y), scale[i] * z, 0.0});
  }
  EXPECT_NEAR(similarity_structure_correlation(a, rows(b)), 1.0, 1e-12);

  // Angles (0, 30, 90) give off-diagonal cosines (cos 30, cos 90, cos 60); angles (0, 150, -90)
  // give exactly their negatives: correlation -1.
  EXPECT_NEAR(similarity_structure_correlation(at_angles({0, 30, 90}), at_angles({0, 150, -90})), -1.0,
              1e-12);

  // One-hot groupings of 4 items (cosine 1 within a group, 0 across): groups {01}{23} against
  // {02}{13}: x = (1,0,0,0,0,1), y = (0,1,0,0,1,0) over the pairs 01 02 03 12 13 23, means 1/3,
  // covariance sum -6/9, variances 12/9 -> correlation -1/2.
  const Tensor g0123 = one_hot_rows({0, 0, 1, 1}, 2), g0213 = one_hot_rows({0, 1, 0, 1}, 2);
  EXPECT_NEAR(similarity_structure_correlation(g0123, g0213), -0.5, 1e-12);
  // {012}{3}: y = (1,1,0,1,0,0), mean 1/2: sum of (x - 1/3)(y - 1/2) = 0 -> correlation 0.
  const Tensor g012_3 = one_hot_rows({0, 0, 0, 1}, 2);
  EXPECT_NEAR(similarity_structure_correlation(g0123, g012_3), 0.0, 1e-12);
  // All cosines equal (orthogonal rows): no variance, reported as 0.
  EXPECT_EQ(similarity_structure_correlation(g0123, one_hot_rows({0, 1, 2, 3}, 4)), 0.0);

  EXPECT_THROW(similarity_structure_correlation(at_angles({0, 10}), at_angles({0, 10})),
               ShapeError);                                                               // N < 3
  EXPECT_THROW(similarity_structure_correlation(a, at_angles({0, 10, 20})), ShapeError);  // N 4 vs 3
}

TEST(ZeroShot, FillTemplate) {
  EXPECT_EQ(fill_template("{name}: {description}", "set alarm", "wake me up"), "set alarm: wake me up");
  EXPECT_EQ(fill_template("i want to {name}, {name}!", "play music", ""),
            "i want to play music, play music!");
  EXPECT_EQ(fill_template("no fields", "x", "y"), "no fields");
  try {
    fill_template("say {nam}", "yes", "");
    ADD_FAILURE() << "no error for an unknown field";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("{nam}"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fill_template("say {name", "yes", ""), ValueError);  // unclosed brace

  // The shipped templates: at least 10 each (the robustness statistics), distinct, and
  // each one fills and mentions the class.
  for (const auto* list : {&train::intent_templates(), &train::keyword_templates()}) {
    EXPECT_GE(list->size(), 10u);
    std::vector<std::string> filled;
    for (const auto& t : *list) filled.push_back(fill_template(t, "NAME", "DESCRIPTION"));
    for (size_t i = 0; i < filled.size(); ++i) {
      EXPECT_TRUE(filled[i].find("NAME") != std::string::npos ||
                  filled[i].find("DESCRIPTION") != std::string::npos)
          << (*list)[i];
      for (size_t j = 0; j < i; ++j) EXPECT_NE(filled[i], filled[j]);
    }
  }
  for (const auto& t : train::keyword_templates())
    EXPECT_NE(fill_template(t, "NAME", "").find("NAME"), std::string::npos)
        << t;  // keywords have no description
}

}  // namespace
}  // namespace cw
