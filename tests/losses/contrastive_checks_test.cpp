// The contrastive losses beyond their gradients: numerical stability at the scale clamp with a
// large batch, errors for bad input (NaN/Inf named by tensor, shapes, options), the metrics,
// independence from the block size, frozen towers and fixed scales, and the option names.
#include <cmath>
#include <string>

#include "losses/contrastive_loss.h"
#include "support/check.h"

namespace cw {
namespace {

using losses::ContrastiveConfig;
using test::all_close;

bool all_finite(const Tensor& t) {
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

// Pairs close to each other: q_i = p_i + noise, so that at scale 100 the logits span [-100, 100].
std::pair<Tensor, Tensor> paired_batch(int64_t n, int64_t d, double noise, uint64_t seed) {
  Generator g(seed);
  const Tensor p = ops::randn({n, d}, DType::F32, g);
  return {p, ops::add(p, ops::mul(ops::randn({n, d}, DType::F32, g), noise))};
}

TEST(ContrastiveChecks, LogitsAtTheClampWithLargeBatchStayFinite) {
  const auto [p0, q0] = paired_batch(4096, 16, 0.05, 5);
  // exp(t) = 272 is clamped to 100: the pairs' logits are ~100, the rest spread over [-100, 100].
  const double t0 = std::log(100.0) + 1.0;
  for (auto kind : {losses::LossKind::InfoNCE, losses::LossKind::CWCL}) {
    ContrastiveConfig cfg;
    cfg.loss = kind;
    cfg.kernel = losses::WeightKernel::Exp;  // blockwise weights: the path with the most state
    // InfoNCE in whole-matrix mode, CWCL in block mode (the online column log-sum-exp).
    cfg.whole_matrix_max_mb = kind == losses::LossKind::InfoNCE ? 256 : 0;
    Variable p(p0, true), q(q0, true), t(ops::scalar(t0), true);
    const auto out = losses::contrastive_loss(p, q, t, cfg);
    EXPECT_TRUE(std::isfinite(out.loss.item())) << to_string(kind);
    EXPECT_EQ(out.metrics.logit_scale, 100.0);
    out.loss.backward();
    EXPECT_TRUE(all_finite(p.grad()) && all_finite(q.grad()) && all_finite(t.grad())) << to_string(kind);
    EXPECT_GT(out.metrics.acc_p2q, 0.99);  // noise 0.05 in 16 dims: every pair is its row's best
  }
  // The opposite extreme: every pair anti-aligned, logits -100 on the diagonal.
  Variable p(p0, true), q(ops::neg(p0), true), t(ops::scalar(std::log(100.0) + 1.0), true);
  const auto out = losses::cwcl_loss(p, q, t);
  out.loss.backward();
  EXPECT_TRUE(std::isfinite(out.loss.item()) && all_finite(p.grad()) && all_finite(q.grad()));
  EXPECT_EQ(out.metrics.acc_p2q, 0.0);
}

TEST(ContrastiveChecks, NonFiniteInputsAreNamed) {
  const Tensor good = test::rand64({4, 3});
  const Variable t(ops::scalar(1.0, DType::F64), true);
  auto expect_error = [](auto fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  Tensor bad = good.clone();
  bad.data<double>()[7] = std::nan("");
  expect_error([&] { losses::cwcl_loss(Variable(bad, true), Variable(good), t); },
               "p (trained-tower embeddings)");
  expect_error([&] { losses::cwcl_loss(Variable(bad, true), Variable(good), t); }, "[2, 1]");
  bad.data<double>()[7] = INFINITY;
  expect_error([&] { losses::info_nce_loss(Variable(good, true), Variable(bad), t); },
               "q (frozen-tower embeddings)");
  expect_error(
      [&] {
        losses::cwcl_loss(Variable(good, true), Variable(good), Variable(ops::scalar(NAN, DType::F64)));
      },
      "log_scale");
  expect_error([&] { losses::cwcl_loss(Variable(good, true), Variable(good), t, {}, bad); }, "weight_source");
}

TEST(ContrastiveChecks, BadShapesAndOptions) {
  const Variable t(ops::scalar(1.0));
  const Variable p(ops::ones({4, 3})), q(ops::ones({4, 3}));
  EXPECT_THROW(losses::cwcl_loss(p, Variable(ops::ones({5, 3})), t), ShapeError);
  EXPECT_THROW(losses::cwcl_loss(p, Variable(ops::ones({4, 2})), t), ShapeError);
  EXPECT_THROW(losses::cwcl_loss(p, Variable(ops::ones({4, 3, 1})), t), ShapeError);
  EXPECT_THROW(losses::cwcl_loss(p, Variable(ops::ones({4, 3}, DType::F64)), t), DTypeError);
  EXPECT_THROW(losses::cwcl_loss(p, q, Variable(ops::ones({2}))), ShapeError);
  EXPECT_THROW(losses::cwcl_loss(Variable(ops::ones({0, 3})), Variable(ops::ones({0, 3})), t), ValueError);
  EXPECT_THROW(losses::cwcl_loss(p, q, t, {}, ops::ones({3, 3})), ShapeError);
  ContrastiveConfig cfg;
  cfg.top_k = 0;
  EXPECT_THROW(losses::cwcl_loss(p, q, t, cfg), ValueError);
  cfg = {};
  cfg.kernel_temperature = 0;
  EXPECT_THROW(losses::cwcl_loss(p, q, t, cfg), ValueError);
  cfg = {};
  cfg.max_logit_scale = -1;
  EXPECT_THROW(losses::cwcl_loss(p, q, t, cfg), ValueError);
}

TEST(ContrastiveChecks, MetricsOnAKnownBatch) {
  // p_i = e_i and q = (e_0, e_1, e_0), so S = P Q^T = [[1, 0, 1], [0, 1, 0], [0, 0, 0]].
  const Tensor p = test::f64({1, 0, 0, 0, 1, 0, 0, 0, 1}, {3, 3});
  const Tensor q = test::f64({1, 0, 0, 0, 1, 0, 1, 0, 0}, {3, 3});
  const auto out = losses::info_nce_loss(Variable(p), Variable(q), Variable(ops::scalar(0.0, DType::F64)));
  EXPECT_DOUBLE_EQ(out.metrics.acc_p2q, 2.0 / 3.0);  // row 2 is all 0: its first max is column 0
  EXPECT_DOUBLE_EQ(out.metrics.acc_q2p, 2.0 / 3.0);  // column 2 is (1, 0, 0): its max is row 0
  EXPECT_DOUBLE_EQ(out.metrics.pos_sim, 2.0 / 3.0);  // cosines 1, 1, 0
  EXPECT_DOUBLE_EQ(out.metrics.neg_sim, 1.0 / 6.0);  // one off-diagonal 1 (row 2, column 0) of six
  EXPECT_DOUBLE_EQ(out.metrics.logit_scale, 1.0);
}

TEST(ContrastiveChecks, BlockSizeDoesNotChangeResults) {
  const auto [p0, q0] = paired_batch(301, 24, 0.8, 9);
  // Whole-matrix mode (with the factored linear kernel for mask None) is the reference of the
  // block-mode runs, all with blockwise weights.
  for (auto mask : {losses::WeightMask::None, losses::WeightMask::TopK}) {
    Tensor ref_loss, ref_dp, ref_dq, ref_dt;
    for (int64_t block : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{64}, int64_t{301}}) {
      ContrastiveConfig cfg;
      cfg.mask = mask;
      cfg.linear_weights =
          block == 0 ? losses::LinearWeightsForm::Factored : losses::LinearWeightsForm::Blockwise;
      cfg.whole_matrix_max_mb = block == 0 ? 256 : 0;
      cfg.block_rows = block;
      Variable p(p0, true), q(q0, true), t(ops::scalar(2.5), true);
      const auto out = losses::cwcl_loss(p, q, t, cfg);
      out.loss.backward();
      if (!ref_loss.defined()) {
        ref_loss = out.loss.data(), ref_dp = p.grad(), ref_dq = q.grad(), ref_dt = t.grad();
        continue;
      }
      const std::string where = std::string(to_string(mask)) + " block_rows=" + std::to_string(block);
      EXPECT_TRUE(all_close(out.loss.data(), ref_loss, 1e-6, 1e-5)) << where;
      EXPECT_TRUE(all_close(p.grad(), ref_dp, 1e-7, 1e-4)) << where;
      EXPECT_TRUE(all_close(q.grad(), ref_dq, 1e-7, 1e-4)) << where;
      EXPECT_TRUE(all_close(t.grad(), ref_dt, 1e-6, 1e-4)) << where;
    }
  }
}

TEST(ContrastiveChecks, FrozenTowerAndFixedScaleGetNoGradient) {
  const auto [p0, q0] = paired_batch(16, 8, 0.5, 3);
  ContrastiveConfig cfg;
  cfg.learn_temperature = false;
  const Variable t = losses::make_log_scale(cfg);
  EXPECT_FALSE(t.requires_grad());
  EXPECT_NEAR(std::exp(t.item()), 1.0 / 0.07, 1e-4);
  Variable p(p0, true), q(q0, false);
  const auto out = losses::cwcl_loss(p, q, t, cfg);
  out.loss.backward();
  EXPECT_TRUE(p.grad().defined());
  EXPECT_FALSE(q.grad().defined());
  EXPECT_FALSE(t.grad().defined());
  // Without any input requiring grad nothing is recorded.
  EXPECT_FALSE(losses::cwcl_loss(Variable(p0), Variable(q0), t).loss.requires_grad());
}

TEST(ContrastiveChecks, OptionNamesRoundTrip) {
  using namespace losses;
  for (auto v : {LossKind::InfoNCE, LossKind::CWCL}) EXPECT_EQ(parse_loss_kind(to_string(v)), v);
  for (auto v : {WeightKernel::Linear, WeightKernel::Exp}) EXPECT_EQ(parse_weight_kernel(to_string(v)), v);
  for (auto v : {WeightMask::None, WeightMask::TopK, WeightMask::Threshold})
    EXPECT_EQ(parse_weight_mask(to_string(v)), v);
  for (auto v : {ReverseDirection::Weighted, ReverseDirection::InfoNCE, ReverseDirection::None})
    EXPECT_EQ(parse_reverse_direction(to_string(v)), v);
  for (auto v : {DirectionReduction::Sum, DirectionReduction::Mean})
    EXPECT_EQ(parse_direction_reduction(to_string(v)), v);
  for (auto v : {LinearWeightsForm::Auto, LinearWeightsForm::Factored, LinearWeightsForm::Blockwise})
    EXPECT_EQ(parse_linear_weights_form(to_string(v)), v);
  EXPECT_THROW(parse_weight_kernel("gaussian"), ValueError);
  EXPECT_NE(describe(ContrastiveConfig{}).find("loss=cwcl kernel=linear mask=none"), std::string::npos);
}

}  // namespace
}  // namespace cw
