// Row-block ("local") contrastive loss (see contrastive_block.h). Both directions are the same
// computation with the roles of the towers swapped: anchors X (a block of rows), candidates C (all
// N), positives on the block's diagonal (anchor k pairs with candidate row0 + k), targets
// T = I (InfoNCE) or W's rows over their sums (CWCL; W is symmetric, so column j's targets
// w_ij / c_j are row j's, c_j = r_j). With S = sigma X_blk C^T, lse_k over all N candidates:
//   l(k) = lse_k - sum_j t_kj s_kj,   G = coeff (softmax(S) - T),
//   dL/dX_blk = sigma G C,   dL/dC = sigma G^T X_blk,   dL/dsigma = sum G S / sigma,
// the closed forms of contrastive_fused.cpp restricted to a block of rows. The gradients are made
// in the forward (the block is never kept) and scaled by the upstream gradient in the backward.
#include "losses/contrastive_block.h"

#include <cmath>
#include <limits>

#include "autograd/functions.h"
#include "autograd/grad_mode.h"
#include "core/ops.h"
#include "losses/block_kernels.h"
#include "losses/contrastive_fused.h"
#include "losses/cwcl_weights.h"
#include "losses/l2_normalize.h"

namespace cw::losses {
namespace {

double host_value(const Tensor& t) { return t.to(Device::cpu()).to(DType::F64).item(); }

struct Direction {
  double loss_sum = 0;  // sum over the block's anchors of l(k)
  int64_t correct = 0;  // anchors whose first argmax is their pair
  double diag = 0, total = 0;
  Tensor d_anchor;  // (rows, D) dL/dX_blk for coeff
  Tensor d_cand;    // (N, D) dL/dC for coeff
  double gs = 0;    // sum_kj g_kj s_kj
};

Direction direction(const Tensor& x_all, const Tensor& c_all, const weights::WeightBlocks& wb, bool weighted,
                    double scale, int64_t row0, int64_t rows, double coeff, bool need_anchor,
                    bool need_cand) {
  const int64_t n = c_all.size(0);
  const Tensor xs = ops::mul(x_all.narrow(0, row0, rows), scale).contiguous();  // (rows, D) sigma X_blk
  Tensor s = Tensor::empty({rows, n}, x_all.dtype(), x_all.device());           // (rows, N)
  blocks::gemm_into(xs, c_all.t(), s);
  Tensor w;
  if (weighted) {
    Tensor buf = Tensor::empty({rows, n}, x_all.dtype(), x_all.device());  // (rows, N) weights
    w = wb.block(row0, buf);
  }
  // Indexed by global row, as the xent passes are.
  Tensor lse = ops::zeros({n}, DType::F64, x_all.device()), r = ops::zeros({n}, DType::F64, x_all.device());
  Direction d;
  const XentRowTotals rt = ops::xent_row_pass(s, w, row0, weighted, lse, r);
  d.loss_sum = host_value(ops::sum(lse.narrow(0, row0, rows))) - (weighted ? rt.target_term : rt.diag);
  d.correct = rt.correct;
  d.diag = rt.diag;
  d.total = rt.total;
  XentGradCoeffs gc;
  gc.alpha = coeff;
  gc.diag = weighted ? 0.0 : coeff;
  gc.weighted_rows = weighted;
  d.gs = ops::xent_gradient_(s, w, row0, gc, lse, Tensor(), r, Tensor()).gs;
  if (need_anchor) {
    d.d_anchor = Tensor::empty({rows, c_all.size(1)}, x_all.dtype(), x_all.device());
    blocks::gemm_into(s, c_all, d.d_anchor);  // G C
    d.d_anchor = ops::mul(d.d_anchor, scale);
  } else {
    d.d_anchor = ops::zeros({rows, c_all.size(1)}, x_all.dtype(), x_all.device());
  }
  if (need_cand) {
    d.d_cand = Tensor::empty(c_all.shape(), x_all.dtype(), x_all.device());
    blocks::gemm_into(s.t(), xs, d.d_cand);  // G^T (sigma X_blk)
  } else {
    d.d_cand = ops::zeros(c_all.shape(), x_all.dtype(), x_all.device());
  }
  return d;
}

void check_2d(const Tensor& t, const char* name, const Tensor& p) {
  CW_CHECK(t.dim() == 2 && is_floating(t.dtype()) && t.dtype() == p.dtype() && t.device() == p.device(),
           ShapeError, "contrastive_loss_block: ", name, " is ", describe(t), ", expected (N, D) like p ",
           describe(p));
  CW_CHECK(t.size(0) == p.size(0), ShapeError, "contrastive_loss_block: ", name, " has ", t.size(0),
           " rows but p has ", p.size(0), " (one row per pair)");
}

void check_finite(const Tensor& t, const char* name) {
  CW_CHECK(std::isfinite(host_value(ops::sum(t.to(DType::F64)))), ValueError,
           "contrastive_loss_block: ", name, " contains NaN or Inf (", describe(t), ")");
}

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
  cfg.validate();
  CW_CHECK(p_all.defined() && q_all.defined() && log_scale.defined(), ValueError,
           "contrastive_loss_block: p, q and log_scale must all be defined");
  const Tensor& pt = p_all.data();
  check_2d(pt, "p", pt);
  check_2d(q_all.data(), "q", pt);
  CW_CHECK(q_all.size(1) == p_all.size(1), ShapeError, "contrastive_loss_block: p ", describe(pt), " and q ",
           describe(q_all.data()), " must have the same width");
  const int64_t n = p_all.size(0);
  CW_CHECK(n >= 1 && row0 >= 0 && rows >= 1 && row0 + rows <= n, ValueError,
           "contrastive_loss_block: block [", row0, ", ", row0 + rows, ") is not a non-empty range of the ",
           n, " pairs");
  CW_CHECK(log_scale.numel() == 1 && is_floating(log_scale.dtype()), ShapeError,
           "contrastive_loss_block: log_scale must be one floating-point value, got ",
           describe(log_scale.data()));
  const bool cwcl = cfg.loss == LossKind::CWCL;
  if (cwcl && weight_source_all.defined()) check_2d(weight_source_all, "weight_source", pt);
  check_finite(pt, "p (trained-tower embeddings, gathered)");
  check_finite(q_all.data(), "q (frozen-tower embeddings, gathered)");
  check_finite(log_scale.data(), "log_scale");

  const double t = host_value(log_scale.data()), raw_scale = std::exp(t);
  const bool clamped = raw_scale > cfg.max_logit_scale;
  const double scale = clamped ? cfg.max_logit_scale : raw_scale;

  NormalizedRows np, nq;
  Tensor p_unit, q_unit, e;
  if (cfg.normalize) {
    np = l2_normalize_rows(pt, cfg.normalize_eps);
    nq = l2_normalize_rows(q_all.data(), cfg.normalize_eps);
    p_unit = np.unit;
    q_unit = nq.unit;
  } else {
    p_unit = pt.contiguous();
    q_unit = q_all.data().contiguous();
  }
  if (cwcl) {
    if (weight_source_all.defined())
      e = l2_normalize_rows(weight_source_all, cfg.normalize_eps).unit;
    else
      e = cfg.normalize ? nq.unit : l2_normalize_rows(q_all.data(), cfg.normalize_eps).unit;
  }

  const fused::TargetPlan plan = fused::make_plan(cfg, n, e.defined() ? e.size(1) : 0, true);
  const bool rows_weighted = plan.rows == fused::TargetForm::LowRank || plan.rows == fused::TargetForm::Block;
  const bool cols_weighted = plan.cols == fused::TargetForm::LowRank || plan.cols == fused::TargetForm::Block;
  const bool has_cols = plan.cols != fused::TargetForm::None;
  weights::Neighbours nb;  // the symmetrised top-k graph needs every row's top k: made over all N
  const weights::WeightBlocks wb =
      rows_weighted || cols_weighted ? weights::weight_blocks(e, plan.weights, &nb) : weights::WeightBlocks{};
  if ((rows_weighted || cols_weighted) && plan.weights.mask == WeightMask::TopK)
    nb = weights::topk_neighbours(wb.e_host, plan.weights.top_k, cfg.block_rows);

  const double alpha = plan.row_weight / static_cast<double>(n);
  const double beta = has_cols ? plan.col_weight / static_cast<double>(n) : 0.0;
  // Gradients only for the towers that want one (the frozen tower's q usually does not).
  const bool grad = GradMode::is_enabled(), need_p = grad && p_all.requires_grad(),
             need_q = grad && q_all.requires_grad();
  const Direction dr = direction(p_unit, q_unit, wb, rows_weighted, scale, row0, rows, alpha, need_p, need_q);
  // Without the column direction its accuracy is still reported (as contrastive_loss does).
  const Direction dc =
      has_cols ? direction(q_unit, p_unit, wb, cols_weighted, scale, row0, rows, beta, need_q, need_p)
               : direction(q_unit, p_unit, wb, false, scale, row0, rows, 0.0, false, false);

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
    if (cfg.normalize) dp = l2_normalize_rows_backward(dp, np);
  }
  if (need_q) {
    dq = has_cols ? add_rows(dr.d_cand, dc.d_anchor, row0) : dr.d_cand;
    if (cfg.normalize) dq = l2_normalize_rows_backward(dq, nq);
  }
  const double dscale = (dr.gs + (has_cols ? dc.gs : 0.0)) / scale;
  const double dt = clamped ? 0.0 : dscale * scale;  // dL/dt = dL/dscale * exp(t), 0 on the clamp
  const char* name = cwcl ? "cwcl_loss_block" : "info_nce_loss_block";
  out.loss =
      ag::record(name, ops::scalar(loss, pt.dtype(), pt.device()), {p_all, q_all, log_scale},
                 [dp, dq, dt, ls = log_scale.data()](const Grads& grads, const std::vector<bool>& need) {
                   const double upstream = host_value(grads[0]);
                   Grads r(3);
                   if (need[0]) r[0] = ops::mul(dp, upstream);
                   if (need[1]) r[1] = ops::mul(dq, upstream);
                   if (need[2]) r[2] = ops::full(ls.shape(), dt * upstream, ls.dtype(), ls.device());
                   return r;
                 });
  return out;
}

}  // namespace cw::losses
