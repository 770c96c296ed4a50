// Row-block ("local") contrastive loss (see contrastive_block.h): the inputs prepared as for
// contrastive_loss (fused::prepare), then both directions for the block by fused::anchor_block,
// the row-block form of the algebra in contrastive_fused.h (the column direction is the row
// direction with the towers swapped), and one autograd node. The gradients are made in the
// forward (the block is never kept) and scaled by the upstream gradient in the backward.
#include "losses/contrastive_block.h"

#include <cmath>
#include <limits>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "losses/contrastive_fused.h"
#include "losses/cwcl_weights.h"

namespace cw::losses {
namespace {

// Places `rows` (r, D) at rows [row0, row0 + r) of `into` (N, D), adding.
Tensor add_rows(const Tensor& into, const Tensor& rows, int64_t row0) {
  Tensor out = into.clone();
  Tensor dst = out.narrow(0, row0, rows.size(0));
  dst.copy_(ops::add(dst, rows));
  return out;
}

}  // namespace

ContrastiveOutput contrastive_loss_block(const Variable& p_all, const Variable& q_all,
                                         const Variable& log_scale, const ContrastiveConfig& cfg,
                                         int64_t row0, int64_t rows, const Tensor& weight_source_all) {
  CW_CHECK(p_all.defined() && q_all.defined() && log_scale.defined(), ValueError,
           "contrastive_loss_block: p, q and log_scale must all be defined");
  const Tensor& pt = p_all.data();
  const fused::Prepared prep =
      fused::prepare("contrastive_loss_block", pt, q_all.data(), log_scale.data(), cfg, weight_source_all);
  const int64_t n = p_all.size(0);
  CW_CHECK(row0 >= 0 && rows >= 1 && row0 + rows <= n, ValueError, "contrastive_loss_block: block [", row0,
           ", ", row0 + rows, ") is not a non-empty range of the ", n, " pairs");
  const fused::Inputs& in = prep.in;
  const double scale = in.scale;

  const fused::TargetPlan plan = fused::make_plan(cfg, n, in.e.defined() ? in.e.size(1) : 0, true);
  const bool rows_weighted = plan.rows == fused::TargetForm::LowRank || plan.rows == fused::TargetForm::Block;
  const bool cols_weighted = plan.cols == fused::TargetForm::LowRank || plan.cols == fused::TargetForm::Block;
  const bool has_cols = plan.cols != fused::TargetForm::None;
  weights::Neighbours nb;  // the symmetrised top-k graph needs every row's top k: made over all N
  const weights::WeightBlocks wb = rows_weighted || cols_weighted
                                       ? weights::weight_blocks(in.e, plan.weights, &nb)
                                       : weights::WeightBlocks{};
  if ((rows_weighted || cols_weighted) && plan.weights.mask == WeightMask::TopK)
    nb = weights::topk_neighbours(wb.e, plan.weights.top_k, cfg.block_rows);

  const double alpha = plan.row_weight / static_cast<double>(n);
  const double beta = has_cols ? plan.col_weight / static_cast<double>(n) : 0.0;
  // Gradients only for the towers that want one (the frozen tower's q usually does not).
  const bool grad = GradMode::is_enabled(), need_p = grad && p_all.requires_grad(),
             need_q = grad && q_all.requires_grad();
  // Rows: the block's p_i against every q_j; columns: the block's q_j against every p_i.
  const fused::AnchorBlock dr = fused::anchor_block(in.p, in.q, rows_weighted ? &wb : nullptr, scale, row0,
                                                    rows, alpha, need_p, need_q);
  // Without the column direction its accuracy is still reported (as contrastive_loss does).
  const fused::AnchorBlock dc =
      has_cols ? fused::anchor_block(in.q, in.p, cols_weighted ? &wb : nullptr, scale, row0, rows, beta,
                                     need_q, need_p)
               : fused::anchor_block(in.q, in.p, nullptr, scale, row0, rows, 0.0, false, false);

  const double loss_rows = dr.loss_sum / static_cast<double>(n);
  const double loss_cols = has_cols ? dc.loss_sum / static_cast<double>(n) : 0.0;
  const double loss = plan.row_weight * loss_rows + (has_cols ? plan.col_weight * loss_cols : 0.0);

  ContrastiveOutput out;
  ContrastiveMetrics& m = out.metrics;
  const double nd = static_cast<double>(n);
  m.loss_p2q = loss_rows;
  m.loss_q2p = has_cols ? loss_cols : std::numeric_limits<double>::quiet_NaN();
  m.acc_p2q = static_cast<double>(dr.correct) / nd;
  m.acc_q2p = static_cast<double>(dc.correct) / nd;
  m.pos_sim = dr.diag / scale / nd;
  m.neg_sim = n > 1 ? (dr.total - dr.diag) / scale / (nd * (nd - 1)) : 0.0;
  m.logit_scale = scale;

  // dL/dP_unit, dL/dQ_unit (N, D): the anchors' block plus the candidates' full rows.
  Tensor dp, dq;
  if (need_p) {
    dp = add_rows(has_cols ? dc.d_cand : ops::zeros(pt.shape(), pt.dtype(), pt.device()), dr.d_anchor, row0);
    if (cfg.normalize) dp = l2_normalize_rows_backward(dp, prep.np);
  }
  if (need_q) {
    dq = has_cols ? add_rows(dr.d_cand, dc.d_anchor, row0) : dr.d_cand;
    if (cfg.normalize) dq = l2_normalize_rows_backward(dq, prep.nq);
  }
  const double dscale = (dr.gs + (has_cols ? dc.gs : 0.0)) / scale;
  const double dt = prep.clamped ? 0.0 : dscale * scale;  // dL/dt = dL/dscale * exp(t), 0 on the clamp
  const char* name = cfg.loss == LossKind::CWCL ? "cwcl_loss_block" : "info_nce_loss_block";
  out.loss =
      ag::record(name, ops::scalar(loss, pt.dtype(), pt.device()), {p_all, q_all, log_scale},
                 [dp, dq, dt, ls = log_scale.data()](const Grads& grads, const std::vector<bool>& need) {
                   const double upstream = grads[0].to(Device::cpu()).to(DType::F64).item();
                   Grads r(3);
                   if (need[0]) r[0] = ops::mul(dp, upstream);
                   if (need[1]) r[1] = ops::mul(dq, upstream);
                   if (need[2]) r[2] = ops::full(ls.shape(), dt * upstream, ls.dtype(), ls.device());
                   return r;
                 });
  return out;
}

}  // namespace cw::losses
