// Gradients of the fused contrastive losses: f64 central differences for every option on tiny
// batches, and equality with the dense loss composed from autograd primitives
// (losses/contrastive_reference.h).
// The weights come from a constant copy of q, matching the loss's definition (W is a target).
#include <cmath>

#include "loss_reference.h"
#include "losses/contrastive_loss.h"
#include "losses/contrastive_reference.h"
#include "losses/cwcl_weights.h"
#include "losses/l2_normalize.h"
#include "support/check.h"

namespace cw {
namespace {

using losses::contrastive_loss;
using test::all_close;
using test::gradcheck;
using test::rand64;
using V = std::vector<Variable>;

// t = log(1 / 0.07): CLIP's initial scale, 14.3, well inside the clamp.
const double kLogScale = std::log(1.0 / 0.07);

struct Shape2 {
  int64_t n, d;
};
constexpr Shape2 kShapes[] = {{1, 3}, {1, 8}, {2, 3}, {2, 8}, {5, 3}, {5, 8}, {17, 3}, {17, 8}};

// Each option on every shape; then the whole option grid on one shape.
TEST(ContrastiveGrad, CentralDifferencesEveryOption) {
  for (const auto& [name, base] : test::one_at_a_time()) {
    for (const Shape2 s : kShapes) {
      const Tensor zp = rand64({s.n, s.d}, -1, 1, 100 + s.n * 10 + s.d);
      const Tensor zq = rand64({s.n, s.d}, -1, 1, 200 + s.n * 10 + s.d);
      // Whole-matrix mode; block mode with 3-row blocks (six, the last short) for the larger
      // batch (EqualsComposedReference holds both modes to 1e-10 on more batches).
      for (const test::Mode& mode : {test::kWhole, test::kBlocks3}) {
        if (mode.block_rows && s.n < 17) continue;
        const losses::ContrastiveConfig cfg = mode.apply(base);
        auto fn = [&](const V& v) { return contrastive_loss(v[0], v[1], v[2], cfg, zq).loss; };
        EXPECT_TRUE(gradcheck(fn, {zp, zq, ops::scalar(kLogScale, DType::F64)}))
            << name << " N=" << s.n << " D=" << s.d << " " << mode.name;
      }
    }
  }
  const Tensor zp = rand64({5, 3}, -1, 1, 3), zq = rand64({5, 3}, -1, 1, 4);
  for (const auto& [name, base] : test::option_grid()) {
    for (const test::Mode& mode : {test::kWhole, test::kBlocks}) {
      const losses::ContrastiveConfig cfg = mode.apply(base);
      auto fn = [&](const V& v) { return contrastive_loss(v[0], v[1], v[2], cfg, zq).loss; };
      EXPECT_TRUE(gradcheck(fn, {zp, zq, ops::scalar(kLogScale, DType::F64)}))
          << name << " N=5 D=3 " << mode.name;
    }
  }
}

TEST(ContrastiveGrad, ClampedScaleHasZeroGradient) {
  // exp(5) = 148 > 100: the scale sits on the clamp, so t gets no gradient (numerically too).
  const Tensor zp = rand64({5, 4}, -1, 1, 1), zq = rand64({5, 4}, -1, 1, 2);
  for (losses::LossKind kind : {losses::LossKind::InfoNCE, losses::LossKind::CWCL}) {
    losses::ContrastiveConfig cfg;
    cfg.loss = kind;
    auto fn = [&](const V& v) { return contrastive_loss(v[0], v[1], v[2], cfg, zq).loss; };
    EXPECT_TRUE(gradcheck(fn, {zp, zq, ops::scalar(5.0, DType::F64)})) << to_string(kind);
    Variable t(ops::scalar(5.0, DType::F64), true);
    contrastive_loss(Variable(zp, true), Variable(zq), t, cfg).loss.backward();
    EXPECT_EQ(t.grad().item(), 0.0);
  }
}

// The fused node and the composed reference agree to 1e-10 in loss and in every gradient.
TEST(ContrastiveGrad, EqualsComposedReference) {
  for (const auto& [name, base] : test::option_grid()) {
    for (const Shape2 s : {Shape2{1, 4}, Shape2{5, 3}, Shape2{17, 8}, Shape2{40, 6}}) {
      for (const test::Mode& mode : {test::kWhole, test::kBlocks, test::kBlocks3}) {
        const losses::ContrastiveConfig cfg = mode.apply(base);
        const Tensor zp = rand64({s.n, s.d}, -1, 1, 7 + s.n), zq = rand64({s.n, s.d}, -1, 1, 8 + s.n);
        const Tensor t0 = ops::scalar(kLogScale, DType::F64);
        V fused = {Variable(zp.clone(), true), Variable(zq.clone(), true), Variable(t0.clone(), true)};
        V ref = {Variable(zp.clone(), true), Variable(zq.clone(), true), Variable(t0.clone(), true)};
        const Variable lf = contrastive_loss(fused[0], fused[1], fused[2], cfg).loss;
        const Variable lr = losses::dense_contrastive_loss(ref[0], ref[1], ref[2], cfg, zq);
        const std::string where = name + " N=" + std::to_string(s.n) + " " + mode.name;
        EXPECT_NEAR(lf.item(), lr.item(), 1e-10) << where;
        lf.backward();
        lr.backward();
        for (int k = 0; k < 3; ++k)
          EXPECT_TRUE(all_close(fused[k].grad(), ref[k].grad(), 1e-10, 0)) << where << " input " << k;
      }
    }
  }
}

// Threshold > 1 keeps only the pairs: W = I, and CWCL must be InfoNCE (up to the order of sums).
TEST(ContrastiveGrad, IdentityWeightsGiveInfoNCE) {
  const Tensor zp = rand64({33, 8}, -1, 1, 31), zq = rand64({33, 8}, -1, 1, 32);
  for (auto rev : {losses::ReverseDirection::Weighted, losses::ReverseDirection::InfoNCE,
                   losses::ReverseDirection::None})
    for (const test::Mode& mode : {test::kWhole, test::kBlocks3}) {
      losses::ContrastiveConfig cfg = mode.apply({});
      cfg.mask = losses::WeightMask::Threshold;
      cfg.threshold = 2.0;
      cfg.reverse = rev;
      V a = {Variable(zp.clone(), true), Variable(zq.clone(), true),
             Variable(ops::scalar(kLogScale, DType::F64), true)};
      V b = {Variable(zp.clone(), true), Variable(zq.clone(), true),
             Variable(ops::scalar(kLogScale, DType::F64), true)};
      const losses::ContrastiveOutput cw = losses::cwcl_loss(a[0], a[1], a[2], cfg);
      const losses::ContrastiveOutput nce = losses::info_nce_loss(b[0], b[1], b[2], cfg);
      EXPECT_NEAR(cw.loss.item(), nce.loss.item(), 1e-13) << to_string(rev) << " " << mode.name;
      cw.loss.backward();
      nce.loss.backward();
      for (int k = 0; k < 3; ++k)
        EXPECT_TRUE(all_close(a[k].grad(), b[k].grad(), 1e-13, 0)) << to_string(rev) << " " << mode.name;
    }
}

TEST(ContrastiveGrad, EqualEmbeddingsGiveUniformTargets) {
  const int64_t n = 6;
  const Tensor same = ops::full({n, 4}, 0.5, DType::F64);
  for (auto kernel : {losses::WeightKernel::Linear, losses::WeightKernel::Exp}) {
    for (auto mask : {losses::WeightMask::None, losses::WeightMask::Threshold}) {
      losses::ContrastiveConfig cfg;
      cfg.kernel = kernel;
      cfg.mask = mask;
      EXPECT_TRUE(
          all_close(losses::cwcl_targets(same, cfg), ops::full({n, n}, 1.0 / n, DType::F64), 1e-15, 0));
      // Uniform targets against uniform softmaxes: each direction is log N, every gradient 0.
      V v = {Variable(same.clone(), true), Variable(same.clone(), true),
             Variable(ops::scalar(1.0, DType::F64), true)};
      const losses::ContrastiveOutput out = losses::cwcl_loss(v[0], v[1], v[2], cfg);
      EXPECT_NEAR(out.loss.item(), std::log(double(n)), 1e-12);
      EXPECT_NEAR(out.metrics.loss_p2q, std::log(double(n)), 1e-12);
      out.loss.backward();
      for (int k = 0; k < 3; ++k) EXPECT_TRUE(all_close(v[k].grad(), ops::zeros_like(v[k].data()), 1e-12, 0));
    }
  }
}

TEST(ContrastiveGrad, WeightsMatchDenseReference) {
  const Tensor e = rand64({23, 5}, -1, 1, 77);
  for (const auto& [name, cfg] : test::option_grid()) {
    if (cfg.loss != losses::LossKind::CWCL) continue;
    EXPECT_TRUE(all_close(losses::cwcl_weights(e, cfg), losses::dense_cwcl_weights(e, cfg), 1e-14, 0))
        << name;
    const Tensor w = losses::cwcl_weights(e, cfg);
    EXPECT_TRUE(all_close(w, w.t().contiguous(), 1e-15, 0)) << name << ": W must be symmetric";
  }
}

// weight_rows (W's rows as core ops: the path off the CPU) gives cosines_to_weights' numbers, for
// row blocks at any offset; the top-k mask is refused (its graph is host lists).
TEST(ContrastiveGrad, WeightRowsAsOpsMatchTheHostWeights) {
  const Tensor e =
      losses::l2_normalize_rows(rand64({23, 5}, -1, 1, 77), 1e-12).unit;  // cwcl_weights normalizes too
  int checked = 0;
  for (const auto& [name, cfg] : test::option_grid()) {
    if (cfg.loss != losses::LossKind::CWCL) continue;
    const losses::weights::WeightSpec spec = losses::weights::spec_of(cfg);
    if (spec.mask == losses::WeightMask::TopK) {
      EXPECT_THROW(losses::weights::weight_rows(e, spec, 0, 3), NotImplementedError) << name;
      continue;
    }
    const Tensor dense = losses::cwcl_weights(e, cfg);  // (23, 23)
    for (const auto& [row0, rows] : {std::pair<int64_t, int64_t>{0, 23}, {5, 7}, {22, 1}})
      EXPECT_TRUE(
          all_close(losses::weights::weight_rows(e, spec, row0, rows), dense.narrow(0, row0, rows), 1e-14, 0))
          << name << " rows " << row0 << "+" << rows;
    ++checked;
  }
  EXPECT_GT(checked, 4);
}

}  // namespace
}  // namespace cw

namespace cw {
namespace {

// Weights from a separate weight source, and a scale on the clamp: the fused node equals the
// dense reference (losses/contrastive_reference.h) in loss and every gradient, over the option grid.
TEST(ContrastiveGrad, WeightSourceAndClampedScaleMatchTheReference) {
  for (const auto& [name, cfg] : test::option_grid()) {
    for (const Shape2 s : {Shape2{1, 4}, Shape2{5, 3}, Shape2{17, 8}}) {
      for (double log_scale : {kLogScale, 5.0}) {  // exp(5) = 148: clamped at 100
        const Tensor zp = rand64({s.n, s.d}, -1, 1, 50 + s.n), zq = rand64({s.n, s.d}, -1, 1, 60 + s.n);
        const Tensor source = rand64({s.n, s.d + 1}, -1, 1, 70 + s.n);
        const Tensor t0 = ops::scalar(log_scale, DType::F64);
        V fused = {Variable(zp.clone(), true), Variable(zq.clone(), true), Variable(t0.clone(), true)};
        V ref = {Variable(zp.clone(), true), Variable(zq.clone(), true), Variable(t0.clone(), true)};
        const bool cwcl = cfg.loss == losses::LossKind::CWCL;
        const Variable lf =
            contrastive_loss(fused[0], fused[1], fused[2], cfg, cwcl ? source : Tensor()).loss;
        const Variable lr = losses::dense_contrastive_loss(ref[0], ref[1], ref[2], cfg, cwcl ? source : zq);
        const std::string where = name + " N=" + std::to_string(s.n) + " t=" + std::to_string(log_scale);
        EXPECT_NEAR(lf.item(), lr.item(), 1e-10) << where;
        lf.backward();
        lr.backward();
        for (int k = 0; k < 2; ++k)
          EXPECT_TRUE(all_close(fused[k].grad(), ref[k].grad(), 1e-10, 0)) << where << " input " << k;
        if (log_scale == kLogScale)
          EXPECT_TRUE(all_close(fused[2].grad(), ref[2].grad(), 1e-10, 0)) << where << " log scale";
        else  // on the clamp the reference's scale is a constant; the node gives t a zero gradient
          EXPECT_EQ(fused[2].grad().item(), 0.0) << where;
      }
    }
  }
}

}  // namespace
}  // namespace cw
