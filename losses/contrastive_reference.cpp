// The dense, readable InfoNCE and CWCL (see contrastive_reference.h): every matrix of the
// formulas is formed, every step is one op.
#include "losses/contrastive_reference.h"

#include <cmath>

#include "autograd/functions.h"
#include "core/ops.h"

namespace cw::losses {
namespace {

// The (N, N) identity in f64: the pair of row i is column i.
Tensor identity(int64_t n) {
  const Tensor idx = ops::arange(0, static_cast<double>(n), 1, DType::F64);
  return ops::eq(idx.reshape({n, 1}), idx.reshape({1, n}));
}

// 1 where j is among the k largest entries of row i of c (N, N), ties by the lower index: the
// position of j in row i sorted that way is the number of columns that come before it.
Tensor row_top_k(const Tensor& c, int64_t k) {
  const int64_t n = c.size(0);
  const Tensor idx = ops::arange(0, static_cast<double>(n), 1, DType::F64);
  const Tensor c_j = c.reshape({n, n, 1}), c_m = c.reshape({n, 1, n});             // (i, j, m)
  const Tensor m_first = ops::lt(idx.reshape({1, 1, n}), idx.reshape({1, n, 1}));  // m < j
  const Tensor before = ops::add(ops::gt(c_m, c_j), ops::mul(ops::eq(c_m, c_j), m_first));
  return ops::lt(ops::sum(before, {2}), static_cast<double>(k));  // position < k
}

}  // namespace

Tensor dense_cwcl_weights(const Tensor& e, const ContrastiveConfig& cfg) {
  const Tensor x = e.to(DType::F64);
  const int64_t n = x.size(0);
  const Tensor norm = ops::sqrt(ops::sum(ops::mul(x, x), {1}, /*keepdim=*/true));  // (N, 1)
  const Tensor unit = ops::div(x, ops::maximum(norm, cfg.normalize_eps));
  const Tensor c = ops::matmul(unit, unit.t());  // (N, N) cosines
  const Tensor w = cfg.kernel == WeightKernel::Linear
                       ? ops::add(ops::mul(c, 0.5), 0.5)
                       : ops::exp(ops::div(ops::sub(c, 1.0), cfg.kernel_temperature));
  Tensor keep = ops::ones({n, n}, DType::F64);
  if (cfg.mask == WeightMask::Threshold) keep = ops::sub(1.0, ops::lt(c, cfg.threshold));
  if (cfg.mask == WeightMask::TopK) {
    const Tensor top = row_top_k(c, cfg.top_k);
    keep = ops::maximum(top, top.t());  // j in i's top k, or i in j's
  }
  keep = ops::maximum(keep, identity(n));  // the pair is always kept
  return ops::mul(w, keep);
}

Variable dense_contrastive_loss(const Variable& zp, const Variable& zq, const Variable& t,
                                const ContrastiveConfig& cfg, const Tensor& e_source) {
  const int64_t n = zp.size(0);
  auto unit = [&](const Variable& z) {
    return cfg.normalize ? ag::div(z, ag::sqrt(ag::sum(ag::mul(z, z), {1}, true))) : z;
  };
  const Variable p = unit(zp), q = unit(zq);
  // scale = min(exp(t), max): past the clamp the scale is a constant, so t gets no gradient.
  const bool clamped = std::exp(t.item()) > cfg.max_logit_scale;
  const Variable scale = clamped ? Variable(ops::scalar(cfg.max_logit_scale, t.dtype())) : ag::exp(t);
  const Variable s = ag::mul(ag::matmul(p, ag::transpose(q, 0, 1)), ag::reshape(scale, {}));  // (N, N)

  Tensor t_rows = identity(n), t_cols = identity(n);  // InfoNCE: the pair is the one target
  if (cfg.loss == LossKind::CWCL) {
    const Tensor w = dense_cwcl_weights(e_source, cfg);
    t_rows = ops::div(w, ops::sum(w, {1}, true));
    if (cfg.reverse == ReverseDirection::Weighted) t_cols = ops::div(w, ops::sum(w, {0}, true));
  }
  const bool cols = cfg.reverse != ReverseDirection::None;
  const double a = cols && cfg.reduction == DirectionReduction::Mean ? 0.5 : 1.0;
  // Cross-entropy of each row (column) of S against its targets, averaged over the N anchors.
  auto direction = [&](int64_t dim, const Tensor& targets) {
    const Variable t_log_p = ag::mul(ag::log_softmax(s, dim), Variable(targets.to(s.dtype())));
    return ag::div(ag::neg(ag::sum(t_log_p)), static_cast<double>(n));
  };
  Variable loss = ag::mul(direction(1, t_rows), a);
  if (cols) loss = ag::add(loss, ag::mul(direction(0, t_cols), a));
  return loss;
}

}  // namespace cw::losses
