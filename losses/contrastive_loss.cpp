// InfoNCE and CWCL as one autograd node each (see contrastive_loss.h): the prepared inputs
// (fused::prepare: checks, scale, normalization), the fused forward of contrastive_fused.h in
// whole-matrix or block mode, the metrics, and ag::record with the hand-written backward.
#include "losses/contrastive_loss.h"

#include <cmath>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "losses/contrastive_fused.h"

namespace cw::losses {

ContrastiveOutput contrastive_loss(const Variable& p, const Variable& q, const Variable& log_scale,
                                   const ContrastiveConfig& cfg, const Tensor& weight_source) {
  CW_CHECK(p.defined() && q.defined() && log_scale.defined(), ValueError,
           "contrastive_loss: p, q and log_scale must all be defined");
  const Tensor& pt = p.data();
  fused::Prepared prep =
      fused::prepare("contrastive_loss", pt, q.data(), log_scale.data(), cfg, weight_source);
  fused::Inputs& in = prep.in;
  const double scale = in.scale;

  // Whole-matrix mode when a gradient will be wanted and N x N fits the budget (config.h).
  const int64_t n_rows = p.size(0);
  const bool grad_wanted =
      GradMode::is_enabled() && (p.requires_grad() || q.requires_grad() || log_scale.requires_grad());
  const double whole_bytes =
      static_cast<double>(n_rows) * static_cast<double>(n_rows) * dtype_size(pt.dtype());
  const bool whole =
      grad_wanted && whole_bytes <= static_cast<double>(cfg.whole_matrix_max_mb) * 1024.0 * 1024.0;
  const fused::TargetPlan plan = fused::make_plan(cfg, n_rows, in.e.defined() ? in.e.size(1) : 0, whole);
  fused::Forward fwd =
      whole ? fused::forward_whole(in, plan, cfg.block_rows, p.requires_grad(), q.requires_grad())
            : fused::forward(in, plan, cfg.block_rows);

  ContrastiveOutput out;
  const double n = static_cast<double>(p.size(0));
  ContrastiveMetrics& m = out.metrics;
  m.loss_p2q = fwd.loss_rows;
  m.loss_q2p = fwd.loss_cols;
  m.acc_p2q = static_cast<double>(fwd.correct_rows) / n;
  m.acc_q2p = static_cast<double>(fwd.correct_cols) / n;
  // Mean cosine of the pairs and of the rest, from the logits' sums the row pass made (s = scale
  // times the cosine, or the raw dot product when the rows are not normalized).
  m.pos_sim = fwd.diag_sum / scale / n;
  m.neg_sim = n > 1 ? (fwd.total_sum - fwd.diag_sum) / scale / (n * (n - 1)) : 0.0;
  m.logit_scale = scale;

  const char* name = cfg.loss == LossKind::CWCL ? "cwcl_loss" : "info_nce_loss";
  // After the whole-matrix forward the gradients are made: keep them, not the inputs.
  if (fwd.saved.eager) in = fused::Inputs{Tensor(), Tensor(), Tensor(), scale};
  out.loss =
      ag::record(name, ops::scalar(fwd.loss, pt.dtype(), pt.device()), {p, q, log_scale},
                 [in, plan, saved = std::move(fwd.saved), np = prep.np, nq = prep.nq,
                  normalize = cfg.normalize, clamped = prep.clamped, scale,
                  ls = log_scale.data()](const Grads& grads, const std::vector<bool>& need) {
                   const double upstream = grads[0].to(Device::cpu()).to(DType::F64).item();
                   fused::Grads g = fused::backward(in, plan, saved, upstream, need[0], need[1], need[2]);
                   Grads r(3);
                   if (need[0]) r[0] = normalize ? l2_normalize_rows_backward(g.p, np) : g.p;
                   if (need[1]) r[1] = normalize ? l2_normalize_rows_backward(g.q, nq) : g.q;
                   // dL/dt = dL/dscale * dscale/dt = dL/dscale * exp(t), or 0 on the clamp.
                   if (need[2])
                     r[2] = ops::full(ls.shape(), clamped ? 0.0 : g.scale * scale, ls.dtype(), ls.device());
                   return r;
                 });
  return out;
}

ContrastiveOutput info_nce_loss(const Variable& p, const Variable& q, const Variable& log_scale,
                                const ContrastiveConfig& cfg) {
  ContrastiveConfig c = cfg;
  c.loss = LossKind::InfoNCE;
  return contrastive_loss(p, q, log_scale, c);
}

ContrastiveOutput cwcl_loss(const Variable& p, const Variable& q, const Variable& log_scale,
                            const ContrastiveConfig& cfg, const Tensor& weight_source) {
  ContrastiveConfig c = cfg;
  c.loss = LossKind::CWCL;
  return contrastive_loss(p, q, log_scale, c, weight_source);
}

Variable make_log_scale(const ContrastiveConfig& cfg, DType dtype) {
  cfg.validate();
  return Variable(ops::scalar(std::log(1.0 / cfg.init_temperature), dtype), cfg.learn_temperature);
}

}  // namespace cw::losses
