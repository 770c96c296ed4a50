// contrastive_loss_composed (see contrastive_composed.h). With s = scale * P Q^T (N x N), targets
// T_rows = W / rowsum(W) and T_cols = W / colsum(W) (both the identity for InfoNCE):
//   L_rows = -(1/N) sum_ij T_rows_ij log softmax_j(s_i.)
//   L_cols = -(1/N) sum_ij T_cols_ij log softmax_i(s_.j)
// combined by cfg.reduction; cfg.reverse picks T_cols = W-based, the identity, or no L_cols.
// Part of losses/.
#include "losses/contrastive_composed.h"

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/functions.h"
#include "losses/cwcl_weights.h"

namespace cw::losses {
namespace {

// z / max(||z||, eps) per row, as F.normalize.
Variable unit_rows(const Variable& z, double eps) {
  const Variable norm = ag::sqrt(ag::sum(z * z, {-1}, /*keepdim=*/true));  // (N, 1)
  return z / ag::maximum(norm, Variable(ops::full({1, 1}, eps, z.dtype(), z.device())));
}

Tensor identity(int64_t n, DType dtype, Device device) {
  std::vector<double> v(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i * n + i)] = 1.0;
  return ops::from_vector(v, {n, n}).to(dtype).to(device);
}

// -(1/N) sum(targets * log_softmax(s, dim)).
Variable cross_entropy(const Variable& s, const Tensor& targets, int64_t dim) {
  return ag::sum(ag::log_softmax(s, dim) * Variable(targets)) * (-1.0 / static_cast<double>(s.size(0)));
}

}  // namespace

ContrastiveOutput contrastive_loss_composed(const Variable& p, const Variable& q, const Variable& log_scale,
                                            const ContrastiveConfig& cfg, const Tensor& weight_source) {
  cfg.validate();
  CW_CHECK(p.defined() && q.defined() && log_scale.defined(), ValueError,
           "contrastive_loss: p, q and log_scale must all be defined");
  CW_CHECK(p.dim() == 2 && q.dim() == 2 && q.shape() == p.shape(), ShapeError, "contrastive_loss: p ",
           describe(p.data()), " and q ", describe(q.data()), " must both be (N, D)");
  CW_CHECK(q.device() == p.device() && log_scale.device() == p.device(), DeviceError,
           "contrastive_loss: p, q and log_scale must be on one device, got ", p.device().str(), ", ",
           q.device().str(), ", ", log_scale.device().str());
  CW_CHECK(p.size(0) >= 1, ValueError, "contrastive_loss: empty batch (N = 0)");
  CW_CHECK(log_scale.numel() == 1, ShapeError, "contrastive_loss: log_scale must be one value, got ",
           describe(log_scale.data()));
  const int64_t n = p.size(0);
  const DType dtype = p.dtype();
  const Device device = p.device();
  const bool cwcl = cfg.loss == LossKind::CWCL;

  // scale = min(exp(t), max): on the clamp the scale is a constant (dL/dt = 0).
  const double t = log_scale.data().to(Device::cpu()).to(DType::F64).item();
  const bool clamped = std::exp(t) > cfg.max_logit_scale;
  CW_CHECK(log_scale.dtype() == dtype, DTypeError, "contrastive_loss: log_scale is ",
           describe(log_scale.data()), " but p is ", describe(p.data()));
  // On the clamp dL/dt = 0. t's branch times 0 keeps t in the graph, so that it gets that zero
  // gradient (as from the fused node) rather than none.
  const Variable exp_t = ag::exp(ag::reshape(log_scale, {}));
  const Variable scale = clamped ? exp_t * 0.0 + cfg.max_logit_scale : exp_t;

  const Variable pu = cfg.normalize ? unit_rows(p, cfg.normalize_eps) : p;
  const Variable qu = cfg.normalize ? unit_rows(q, cfg.normalize_eps) : q;
  const Variable s = ag::matmul(pu, ag::transpose(qu, 0, 1)) * scale;  // (N, N)

  Tensor rows_t, cols_t;  // (N, N) targets
  const Tensor eye = identity(n, dtype, device);
  if (cwcl) {
    const Tensor e = (weight_source.defined() ? weight_source : q.data()).to(Device::cpu());
    const Tensor w = cwcl_weights(e, cfg).to(dtype).to(device);
    rows_t = ops::div(w, ops::sum(w, {1}, true));
    cols_t = cfg.reverse == ReverseDirection::Weighted ? ops::div(w, ops::sum(w, {0}, true)) : eye;
  } else {
    rows_t = cols_t = eye;
  }

  const Variable loss_rows = cross_entropy(s, rows_t, 1);
  Variable loss;
  Variable loss_cols;
  if (cfg.reverse == ReverseDirection::None) {
    loss = loss_rows;
  } else {
    // Column j's softmax is over i: the transpose's rows, with the transposed targets.
    loss_cols = cross_entropy(ag::transpose(s, 0, 1), cols_t.transpose(0, 1).contiguous(), 1);
    loss = cfg.reduction == DirectionReduction::Mean ? (loss_rows + loss_cols) * 0.5 : loss_rows + loss_cols;
  }

  // Metrics from one host copy of the logits.
  ContrastiveOutput out;
  out.loss = loss;
  ContrastiveMetrics& m = out.metrics;
  const double scale_value = clamped ? cfg.max_logit_scale : std::exp(t);
  const std::vector<double> sv = s.data().to(Device::cpu()).to(DType::F64).contiguous().to_vector<double>();
  int64_t correct_rows = 0, correct_cols = 0;
  double diag = 0, total = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best_r = 0, best_c = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (sv[i * n + j] > sv[i * n + best_r]) best_r = j;  // row i, first argmax over j
      if (sv[j * n + i] > sv[best_c * n + i]) best_c = j;  // column i, first argmax over rows
      total += sv[i * n + j];
    }
    correct_rows += best_r == i;
    correct_cols += best_c == i;
    diag += sv[i * n + i];
  }
  const double nd = static_cast<double>(n);
  m.loss_p2q = loss_rows.data().to(Device::cpu()).to(DType::F64).item();
  m.loss_q2p = loss_cols.defined() ? loss_cols.data().to(Device::cpu()).to(DType::F64).item()
                                   : std::numeric_limits<double>::quiet_NaN();
  m.acc_p2q = static_cast<double>(correct_rows) / nd;
  m.acc_q2p = static_cast<double>(correct_cols) / nd;
  m.pos_sim = diag / scale_value / nd;
  m.neg_sim = n > 1 ? (total - diag) / scale_value / (nd * (nd - 1)) : 0.0;
  m.logit_scale = scale_value;
  return out;
}

}  // namespace cw::losses
