// Fused InfoNCE / CWCL: the input preparation, block mode, whole-matrix mode and the row-block
// form, all from the algebra stated in contrastive_fused.h.
#include "losses/contrastive_fused.h"

#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "core/ops.h"

namespace cw::losses::fused {
namespace {

// A scalar on any device, read on the host in double.
double host_value(const Tensor& t) { return t.to(Device::cpu()).to(DType::F64).item(); }

// <a, b> summed over all elements, in double.
double dot_all(const Tensor& a, const Tensor& b) { return host_value(ops::sum(ops::mul(a, b))); }
double sum_all(const Tensor& t) { return host_value(ops::sum(t)); }

// An (N) f64 vector as an (N, 1) column of `dtype`, to scale rows.
Tensor column_of(const Tensor& v, DType dtype) { return v.reshape({v.numel(), 1}).to(dtype); }

// ---- input checks (prepare) ----

void check_embeddings(const char* op, const Tensor& t, const char* name, const Tensor& p) {
  CW_CHECK(t.dim() == 2, ShapeError, op, ": ", name, " must be (N, D), got ", describe(t));
  CW_CHECK(is_floating(t.dtype()), DTypeError, op, ": ", name, " must be f32 or f64, got ", describe(t));
  CW_CHECK(t.dtype() == p.dtype(), DTypeError, op, ": ", name, " is ", describe(t), " but p is ",
           describe(p));
  CW_CHECK(t.device() == p.device(), DeviceError, op, ": ", name, " is on ", t.device().str(),
           " but p is on ", p.device().str());
  CW_CHECK(t.size(0) == p.size(0), ShapeError, op, ": ", name, " has ", t.size(0), " rows but p has ",
           p.size(0), " (one row per pair)");
}

// ---- the pieces of the passes ----

// W's row blocks for a pass (nothing to make when no direction needs them).
weights::WeightBlocks weight_source(const Inputs& in, const TargetPlan& plan, const Saved& sv) {
  if (!plan.uses_blocks()) return {};
  return weights::weight_blocks(in.e, plan.weights, &sv.topk);
}

// W's rows [i0, i0 + rows), made into w_buf's first rows; undefined without a buffer.
Tensor weight_block(const weights::WeightBlocks& ws, const Tensor& w_buf, int64_t i0, int64_t rows) {
  if (!w_buf.defined()) return Tensor();
  Tensor buf = w_buf.narrow(0, 0, rows);
  return ws.block(i0, buf);
}

// T Y for one direction's LowRank targets; transpose gives T^T Y.
// Rows: T_r = diag(1/r) W, T_r^T = W diag(1/r). Columns: T_c = W diag(1/r), T_c^T = diag(1/r) W.
Tensor apply_direction(bool rows, bool transpose, const Tensor& e, const Tensor& rinv, const Tensor& y) {
  const bool scale_after = rows != transpose;  // diag(1/r) on the left
  if (scale_after) return ops::mul(weights::linear_weights_times(e, y), rinv);
  return weights::linear_weights_times(e, ops::mul(y, rinv));
}

bool is_low_rank(TargetForm f) { return f == TargetForm::LowRank; }

// T_r Q and T_c Q for the LowRank directions (undefined otherwise). When both are LowRank
// the two products W Q and W diag(1/r) Q share their GEMMs: W [Q, Q/r] at once.
std::pair<Tensor, Tensor> target_products(const TargetPlan& plan, const Tensor& e, const Tensor& rinv,
                                          const Tensor& q) {
  if (plan.rows == TargetForm::LowRank && plan.cols == TargetForm::LowRank) {
    const int64_t d = q.size(1);
    const Tensor wy = weights::linear_weights_times(e, ops::concat({q, ops::mul(q, rinv)}, 1));
    return {ops::mul(wy.narrow(1, 0, d), rinv), wy.narrow(1, d, d).contiguous()};
  }
  Tensor rows, cols;
  if (is_low_rank(plan.rows)) rows = apply_direction(true, false, e, rinv, q);
  if (is_low_rank(plan.cols)) cols = apply_direction(false, false, e, rinv, q);
  return {rows, cols};
}

// A Q = alpha T_r Q + beta T_c Q over the LowRank directions; undefined when none is.
Tensor low_rank_aq(const Tensor& rows_tq, const Tensor& cols_tq, double alpha, double beta) {
  Tensor aq;
  if (rows_tq.defined()) aq = ops::mul(rows_tq, alpha);
  if (cols_tq.defined()) aq = aq.defined() ? ops::add(aq, ops::mul(cols_tq, beta)) : ops::mul(cols_tq, beta);
  return aq;
}

// A^T P with A = alpha T_r + beta T_c over the LowRank directions; undefined when none is.
Tensor transposed_operator_targets(const TargetPlan& plan, double alpha, double beta, const Tensor& e,
                                   const Tensor& rinv, const Tensor& p) {
  Tensor out;
  auto add = [&](const Tensor& t) { out = out.defined() ? ops::add(out, t) : t; };
  if (is_low_rank(plan.rows)) add(ops::mul(apply_direction(true, true, e, rinv, p), alpha));
  if (is_low_rank(plan.cols)) add(ops::mul(apply_direction(false, true, e, rinv, p), beta));
  return out;
}

// The gradient block's coefficients; Identity targets go on the diagonal.
XentGradCoeffs coeffs_of(const TargetPlan& plan, double alpha, double beta, bool target_terms) {
  XentGradCoeffs c;
  c.alpha = alpha;
  c.beta = beta;
  c.diag =
      (plan.rows == TargetForm::Identity ? alpha : 0.0) + (plan.cols == TargetForm::Identity ? beta : 0.0);
  c.weighted_rows = plan.rows == TargetForm::Block;
  c.weighted_cols = plan.cols == TargetForm::Block;
  c.target_terms = target_terms;
  return c;
}

// The column vectors the gradient pass reads, in the logits' dtype: clse (when there is a column
// direction) and 1 / c (weighted columns).
std::pair<Tensor, Tensor> column_vectors(const Saved& sv, const XentGradCoeffs& c, DType dtype) {
  Tensor clse = c.beta != 0 ? sv.clse.to(dtype) : Tensor();
  Tensor cinv = c.weighted_cols ? ops::div(1.0, sv.c).to(dtype) : Tensor();
  return {clse, cinv};
}

// 1 / r as an (N, 1) column of the inputs' dtype; undefined without W.
Tensor row_inverse(const Saved& sv, DType dtype) {
  return sv.r.defined() ? column_of(ops::div(1.0, sv.r), dtype) : Tensor();
}

// <T, S> of one direction: the pairs' logits for Identity, <sigma P, T Q> for LowRank, or the
// sum the block passes made for Block.
double target_term(TargetForm form, double diag_sum, double block_sum, const Tensor& ps, const Tensor& tq) {
  if (form == TargetForm::Identity) return diag_sum;
  if (form == TargetForm::LowRank) return dot_all(ps, tq);
  return block_sum;
}

// L_rows, L_cols and L from the saved log-sum-exps and each direction's <T, S> (block_* the sums
// the passes made for Block targets, *_tq the products T Q of LowRank ones).
void finish_loss(Forward& out, const TargetPlan& plan, const Tensor& ps, double row_block_term,
                 double col_block_term, const Tensor& rows_tq, const Tensor& cols_tq) {
  const double n = static_cast<double>(ps.size(0));
  const Saved& sv = out.saved;
  const double row_term = target_term(plan.rows, out.diag_sum, row_block_term, ps, rows_tq);
  out.loss_rows = (sum_all(sv.lse) - row_term) / n;
  out.loss_cols = std::numeric_limits<double>::quiet_NaN();
  const bool has_cols = plan.cols != TargetForm::None;
  if (has_cols) {
    const double col_term = target_term(plan.cols, out.diag_sum, col_block_term, ps, cols_tq);
    out.loss_cols = (sum_all(sv.clse) - col_term) / n;
  }
  out.loss = plan.row_weight * out.loss_rows + (has_cols ? plan.col_weight * out.loss_cols : 0.0);
}

// dL/dP, dL/dQ, dL/dsigma from G_blk's products gq = G_blk Q and gp = G_blk^T (sigma P) and
// gs = sum G_blk S, minus the LowRank targets' share (aq = A Q; A^T P is made here).
Grads assemble_grads(const Inputs& in, const TargetPlan& plan, double alpha, double beta, const Tensor& rinv,
                     const Tensor& aq, const Tensor& gq, const Tensor& gp, double gs, bool need_scale) {
  Grads g;
  if (gq.defined()) g.p = ops::mul(aq.defined() ? ops::sub(gq, aq) : gq, in.scale);
  if (gp.defined()) {
    const Tensor atp = transposed_operator_targets(plan, alpha, beta, in.e, rinv, in.p);
    g.q = atp.defined() ? ops::sub(gp, ops::mul(atp, in.scale)) : gp;
  }
  if (need_scale) g.scale = gs / in.scale - (aq.defined() ? dot_all(in.p, aq) : 0.0);
  return g;
}

// Columns whose first argmax is their pair, from the column state.
int64_t correct_columns(const XentColumnState& st) {
  const std::vector<int64_t> arg = st.argmax.to(Device::cpu()).to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t j = 0; j < arg.size(); ++j) correct += arg[j] == static_cast<int64_t>(j) ? 1 : 0;
  return correct;
}

void check_inputs(const Inputs& in, const TargetPlan& plan) {
  CW_CHECK(in.q.device() == in.p.device() && (!in.e.defined() || in.e.device() == in.p.device()), DeviceError,
           "contrastive_loss: p, q and the weight embeddings must be on one device, got ",
           in.p.device().str(), ", ", in.q.device().str(),
           in.e.defined() ? ", " + in.e.device().str() : std::string());
  CW_CHECK(in.scale > 0 && std::isfinite(in.scale), ValueError,
           "contrastive_loss: the logit scale must be finite and > 0, got ", in.scale);
  if (plan.rows == TargetForm::LowRank || plan.rows == TargetForm::Block)
    CW_CHECK(in.e.defined() && in.e.size(0) == in.p.size(0), ShapeError,
             "contrastive_loss: CWCL needs weight embeddings with one row per pair");
}

}  // namespace

Prepared prepare(const char* op, const Tensor& p, const Tensor& q, const Tensor& log_scale,
                 const ContrastiveConfig& cfg, const Tensor& weight_source) {
  cfg.validate();
  CW_CHECK(p.defined() && q.defined() && log_scale.defined(), ValueError, op,
           ": p, q and log_scale must all be defined");
  check_embeddings(op, p, "p", p);
  check_embeddings(op, q, "q", p);
  CW_CHECK(q.size(1) == p.size(1), ShapeError, op, ": p ", describe(p), " and q ", describe(q),
           " must have the same width");
  CW_CHECK(p.size(0) >= 1, ValueError, op, ": empty batch (N = 0)");
  CW_CHECK(log_scale.numel() == 1 && is_floating(log_scale.dtype()), ShapeError, op,
           ": log_scale must be one floating-point value, got ", describe(log_scale));
  const bool cwcl = cfg.loss == LossKind::CWCL;
  if (cwcl && weight_source.defined()) check_embeddings(op, weight_source, "weight_source", p);
  // NaN or Inf would otherwise flow silently into every row's log-sum-exp and every gradient.
  ops::check_finite(p, op, "p (trained-tower embeddings)");
  ops::check_finite(q, op, "q (frozen-tower embeddings)");
  ops::check_finite(log_scale, op, "log_scale");
  if (cwcl && weight_source.defined()) ops::check_finite(weight_source, op, "weight_source");

  Prepared out;
  // scale = min(exp(t), max): CLIP's learnable temperature with its clamp at 100.
  const double raw_scale = std::exp(host_value(log_scale));
  out.clamped = raw_scale > cfg.max_logit_scale;
  out.in.scale = out.clamped ? cfg.max_logit_scale : raw_scale;
  if (cfg.normalize) {
    out.np = l2_normalize_rows(p, cfg.normalize_eps);
    out.nq = l2_normalize_rows(q, cfg.normalize_eps);
    out.in.p = out.np.unit;
    out.in.q = out.nq.unit;
  } else {
    out.in.p = p.contiguous();
    out.in.q = q.contiguous();
  }
  if (cwcl) {  // the weights are cosines of the frozen tower, whatever cfg.normalize says
    if (weight_source.defined())
      out.in.e = l2_normalize_rows(weight_source, cfg.normalize_eps).unit;
    else
      out.in.e = cfg.normalize ? out.nq.unit : l2_normalize_rows(q, cfg.normalize_eps).unit;
  }
  return out;
}

TargetPlan make_plan(const ContrastiveConfig& cfg, int64_t n, int64_t d, bool whole) {
  TargetPlan plan;
  plan.weights = weights::spec_of(cfg);
  TargetForm weighted = TargetForm::Identity;
  if (cfg.loss == LossKind::CWCL) {
    // Factored costs about 8 N D^2 flops per step (W [Q, Q/r]: two thin GEMMs of N x D x 2D);
    // blockwise one E E^T GEMM (2 N^2 D) per pass over S: two passes in block mode (factored
    // wins from N = 2 D), one in whole-matrix mode (from N = 4 D).
    const int64_t from = whole ? 4 * d : 2 * d;
    const bool factored = cfg.linear_weights == LinearWeightsForm::Factored ||
                          (cfg.linear_weights == LinearWeightsForm::Auto && n >= from);
    weighted = weights::is_low_rank(plan.weights) && factored ? TargetForm::LowRank : TargetForm::Block;
  }
  plan.rows = weighted;
  switch (cfg.reverse) {
    case ReverseDirection::Weighted: plan.cols = weighted; break;
    case ReverseDirection::InfoNCE: plan.cols = TargetForm::Identity; break;
    case ReverseDirection::None: plan.cols = TargetForm::None; break;
  }
  const bool both = plan.cols != TargetForm::None;
  const double a = both && cfg.reduction == DirectionReduction::Mean ? 0.5 : 1.0;
  plan.row_weight = a;
  plan.col_weight = both ? a : 0.0;
  return plan;
}

Forward forward(const Inputs& in, const TargetPlan& plan, int64_t block_rows) {
  check_inputs(in, plan);
  const int64_t n = in.p.size(0);
  const Device device = in.p.device();
  const bool blocked_w = plan.uses_blocks(), has_cols = plan.cols != TargetForm::None;
  Forward out;
  Saved& sv = out.saved;
  sv.block_rows = choose_block_rows(n, blocked_w ? 2 : 1, block_rows);
  sv.lse = ops::zeros({n}, DType::F64, device);
  if (plan.rows == TargetForm::Block) sv.r = ops::zeros({n}, DType::F64, device);
  const weights::WeightBlocks ws = weight_source(in, plan, sv);
  if (blocked_w && plan.weights.mask == WeightMask::TopK)
    sv.topk = weights::topk_neighbours(ws.e, plan.weights.top_k, block_rows);
  if (plan.rows == TargetForm::LowRank) sv.r = weights::linear_weights_row_sums(in.e).to(DType::F64);

  const Tensor ps = ops::mul(in.p, in.scale);  // sigma P: S's blocks are (sigma P_blk) Q^T
  const Tensor qt = in.q.t();
  Tensor s_buf = Tensor::empty({sv.block_rows, n}, in.p.dtype(), device);
  Tensor w_buf = blocked_w ? Tensor::empty({sv.block_rows, n}, in.p.dtype(), device) : Tensor();
  XentColumnState cols = ops::xent_column_state(n, plan.cols == TargetForm::Block, device);
  double row_block_term = 0.0;
  for (int64_t i0 = 0; i0 < n; i0 += sv.block_rows) {
    const int64_t rows = std::min(sv.block_rows, n - i0);
    Tensor s = s_buf.narrow(0, 0, rows);
    ops::matmul_out(ps.narrow(0, i0, rows), qt, s);
    const Tensor w = weight_block(ws, w_buf, i0, rows);
    const XentRowTotals rt = ops::xent_row_pass(s, w, i0, plan.rows == TargetForm::Block, sv.lse, sv.r);
    out.correct_rows += rt.correct;
    out.diag_sum += rt.diag;
    out.total_sum += rt.total;
    row_block_term += rt.target_term;
    ops::xent_column_pass(s, w, i0, has_cols, plan.cols == TargetForm::Block, cols);
  }
  out.correct_cols = correct_columns(cols);

  // The column log-sum-exps and Block targets' column term from the column state; the LowRank
  // products T Q are kept for the backward (O(N D)).
  double col_block_term = 0.0;
  if (has_cols) {
    sv.clse = ops::add(cols.max, ops::log(cols.sum));
    if (plan.cols == TargetForm::Block) {
      col_block_term = sum_all(ops::div(cols.wdot, cols.wsum));
      sv.c = cols.wsum;
    }
  }
  std::tie(sv.rows_tq, sv.cols_tq) = target_products(plan, in.e, row_inverse(sv, in.p.dtype()), in.q);
  finish_loss(out, plan, ps, row_block_term, col_block_term, sv.rows_tq, sv.cols_tq);
  return out;
}

Grads backward(const Inputs& in, const TargetPlan& plan, const Saved& sv, double upstream, bool need_p,
               bool need_q, bool need_scale) {
  Grads g;
  if (!need_p && !need_q && !need_scale) return g;
  if (sv.eager) {  // whole-matrix mode: the forward made the gradients for upstream 1
    if (need_p) g.p = upstream == 1.0 ? sv.dp : ops::mul(sv.dp, upstream);
    if (need_q) g.q = upstream == 1.0 ? sv.dq : ops::mul(sv.dq, upstream);
    g.scale = sv.dscale * upstream;
    return g;
  }
  const int64_t n = in.p.size(0), b = sv.block_rows;
  const Device device = in.p.device();
  const bool blocked_w = plan.uses_blocks(), has_cols = plan.cols != TargetForm::None;
  // The upstream gradient scales G linearly: fold it into alpha and beta.
  const double alpha = upstream * plan.row_weight / static_cast<double>(n);
  const double beta = has_cols ? upstream * plan.col_weight / static_cast<double>(n) : 0.0;

  const Tensor ps = ops::mul(in.p, in.scale);
  const Tensor qt = in.q.t();
  const weights::WeightBlocks ws = weight_source(in, plan, sv);
  Tensor s_buf = Tensor::empty({b, n}, in.p.dtype(), device);
  Tensor w_buf = blocked_w ? Tensor::empty({b, n}, in.p.dtype(), device) : Tensor();
  Tensor gq = need_p ? Tensor::empty(in.p.shape(), in.p.dtype(), device) : Tensor();  // G_blk Q
  Tensor gp = need_q ? ops::zeros(in.q.shape(), in.q.dtype(), device) : Tensor();     // G_blk^T (sigma P)
  Tensor gp_part = need_q && b < n ? Tensor::empty(in.q.shape(), in.q.dtype(), device) : Tensor();
  const XentGradCoeffs coeffs = coeffs_of(plan, alpha, beta, false);
  const auto [clse, cinv] = column_vectors(sv, coeffs, in.p.dtype());
  double gs = 0.0;  // sum_ij G_blk,ij s_ij
  for (int64_t i0 = 0; i0 < n; i0 += b) {
    const int64_t rows = std::min(b, n - i0);
    Tensor s = s_buf.narrow(0, 0, rows);
    ops::matmul_out(ps.narrow(0, i0, rows), qt, s);
    const Tensor w = weight_block(ws, w_buf, i0, rows);
    gs += ops::xent_gradient_(s, w, i0, coeffs, sv.lse, clse, sv.r, cinv).gs;
    if (need_p) {
      Tensor gq_rows = gq.narrow(0, i0, rows);
      ops::matmul_out(s, in.q, gq_rows);
    }
    if (need_q) {
      if (b >= n) {
        ops::matmul_out(s.t(), ps.narrow(0, i0, rows), gp);  // one block: the whole product
      } else {
        ops::matmul_out(s.t(), ps.narrow(0, i0, rows), gp_part);
        ops::add_(gp, gp_part);
      }
    }
  }
  // A Q from the forward's products; A^T P (in assemble_grads) only when q wants a gradient.
  const Tensor aq = low_rank_aq(sv.rows_tq, sv.cols_tq, alpha, beta);
  const Tensor rinv = need_q ? row_inverse(sv, in.p.dtype()) : Tensor();
  return assemble_grads(in, plan, alpha, beta, rinv, aq, gq, gp, gs, need_scale);
}

Forward forward_whole(const Inputs& in, const TargetPlan& plan, int64_t block_rows, bool need_p,
                      bool need_q) {
  check_inputs(in, plan);
  const int64_t n = in.p.size(0);
  const Device device = in.p.device();
  const bool blocked_w = plan.uses_blocks(), has_cols = plan.cols != TargetForm::None;
  const double alpha = plan.row_weight / static_cast<double>(n);
  const double beta = has_cols ? plan.col_weight / static_cast<double>(n) : 0.0;
  Forward out;
  Saved& sv = out.saved;
  sv.eager = true;
  sv.lse = ops::zeros({n}, DType::F64, device);

  // S whole: one GEMM, then exact row and column log-sum-exps (the column pass is the same
  // online one, over a single block).
  const Tensor ps = ops::mul(in.p, in.scale);
  Tensor s = Tensor::empty({n, n}, in.p.dtype(), device);
  ops::matmul_out(ps, in.q.t(), s);
  XentColumnState cols = ops::xent_column_state(n, false, device);
  {
    Tensor no_r;
    const XentRowTotals rt = ops::xent_row_pass(s, Tensor(), 0, false, sv.lse, no_r);
    out.correct_rows = rt.correct;
    out.diag_sum = rt.diag;
    out.total_sum = rt.total;
  }
  ops::xent_column_pass(s, Tensor(), 0, has_cols, false, cols);
  out.correct_cols = correct_columns(cols);
  if (has_cols) sv.clse = ops::add(cols.max, ops::log(cols.sum));

  // W's sums must be whole before any block folds its targets in (T_c divides by c_j).
  const weights::WeightBlocks ws = weight_source(in, plan, sv);
  if (blocked_w) {
    if (plan.weights.mask == WeightMask::TopK)
      sv.topk = weights::topk_neighbours(ws.e, plan.weights.top_k, block_rows);
    std::tie(sv.r, sv.c) = ws.sums(block_rows);
  } else if (plan.rows == TargetForm::LowRank) {
    sv.r = weights::linear_weights_row_sums(in.e).to(DType::F64);
  }

  // S -> G in place, row block by row block (W's blocks made alongside), summing the target
  // terms of the loss on the way.
  const XentGradCoeffs coeffs = coeffs_of(plan, alpha, beta, /*target_terms=*/true);
  const auto [clse, cinv] = column_vectors(sv, coeffs, in.p.dtype());
  const int64_t b = blocked_w ? choose_block_rows(n, 1, block_rows) : n;
  Tensor w_buf = blocked_w ? Tensor::empty({b, n}, in.p.dtype(), device) : Tensor();
  XentGradTotals totals;
  for (int64_t i0 = 0; i0 < n; i0 += b) {
    const int64_t rows = std::min(b, n - i0);
    Tensor g = s.narrow(0, i0, rows);
    const Tensor w = weight_block(ws, w_buf, i0, rows);
    const XentGradTotals t = ops::xent_gradient_(g, w, i0, coeffs, sv.lse, clse, sv.r, cinv);
    totals.gs += t.gs;
    totals.row_term += t.row_term;
    totals.col_term += t.col_term;
  }
  w_buf = Tensor();

  // The loss, then the gradients for an upstream gradient of 1 (the backward scales them).
  const Tensor rinv = row_inverse(sv, in.p.dtype());
  const auto [rows_tq, cols_tq] = target_products(plan, in.e, rinv, in.q);
  finish_loss(out, plan, ps, totals.row_term, totals.col_term, rows_tq, cols_tq);
  Tensor gq, gp;
  if (need_p) {
    gq = Tensor::empty(in.p.shape(), in.p.dtype(), device);
    ops::matmul_out(s, in.q, gq);  // G Q
  }
  if (need_q) {
    gp = Tensor::empty(in.q.shape(), in.q.dtype(), device);
    ops::matmul_out(s.t(), ps, gp);  // G^T (sigma P)
  }
  const Grads g = assemble_grads(in, plan, alpha, beta, rinv, low_rank_aq(rows_tq, cols_tq, alpha, beta), gq,
                                 gp, totals.gs, /*need_scale=*/true);
  sv.dp = g.p;
  sv.dq = g.q;
  sv.dscale = g.scale;
  return out;
}

AnchorBlock anchor_block(const Tensor& x, const Tensor& c, const weights::WeightBlocks* weights, double scale,
                         int64_t row0, int64_t rows, double coeff, bool need_anchor, bool need_cand) {
  const int64_t n = c.size(0), d = c.size(1);
  const Device device = x.device();
  const bool weighted = weights != nullptr;
  const Tensor xs = ops::mul(x.narrow(0, row0, rows), scale).contiguous();  // (rows, D) sigma X_blk
  Tensor s = Tensor::empty({rows, n}, x.dtype(), device);                   // (rows, N)
  ops::matmul_out(xs, c.t(), s);
  Tensor w;
  if (weighted) {
    Tensor buf = Tensor::empty({rows, n}, x.dtype(), device);  // (rows, N) weights
    w = weights->block(row0, buf);
  }
  // Indexed by global row, as the xent passes are.
  Tensor lse = ops::zeros({n}, DType::F64, device), r = ops::zeros({n}, DType::F64, device);
  AnchorBlock out;
  const XentRowTotals rt = ops::xent_row_pass(s, w, row0, weighted, lse, r);
  out.loss_sum = host_value(ops::sum(lse.narrow(0, row0, rows))) - (weighted ? rt.target_term : rt.diag);
  out.correct = rt.correct;
  out.diag = rt.diag;
  out.total = rt.total;
  // The row direction alone: G = coeff (softmax - T), T on the diagonal or W's rows over r.
  TargetPlan plan;
  plan.rows = weighted ? TargetForm::Block : TargetForm::Identity;
  plan.cols = TargetForm::None;
  out.gs = ops::xent_gradient_(s, w, row0, coeffs_of(plan, coeff, 0.0, false), lse, Tensor(), r, Tensor()).gs;
  if (need_anchor) {
    out.d_anchor = Tensor::empty({rows, d}, x.dtype(), device);
    ops::matmul_out(s, c, out.d_anchor);  // G C
    out.d_anchor = ops::mul(out.d_anchor, scale);
  } else {
    out.d_anchor = ops::zeros({rows, d}, x.dtype(), device);
  }
  if (need_cand) {
    out.d_cand = Tensor::empty(c.shape(), x.dtype(), device);
    ops::matmul_out(s.t(), xs, out.d_cand);  // G^T (sigma X_blk)
  } else {
    out.d_cand = ops::zeros(c.shape(), x.dtype(), device);
  }
  return out;
}

}  // namespace cw::losses::fused
