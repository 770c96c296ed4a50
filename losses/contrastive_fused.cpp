// Fused InfoNCE / CWCL forward and hand-written backward (see contrastive_fused.h).
//
// Derivation. P, Q (N, D) unit rows, sigma the logit scale, S = sigma P Q^T (N, N).
// Targets: rows T_r (each row sums to 1), columns T_c (each column sums to 1):
//   InfoNCE T_r = T_c = I;  CWCL  T_r = diag(1/r) W,  T_c = W diag(1/c),  r = W 1,  c = W^T 1.
// W is symmetric (cwcl_weights.h), so c = r and column j's targets are row j of T_r; the code
// still divides columns by their own sums so that rounding cannot unbalance them.
// With lse_i = log sum_j e^{s_ij} and clse_j = log sum_i e^{s_ij},
//   L_rows = -(1/N) sum_ij T_r,ij log softmax_j(s_i.)_j = (1/N) [sum_i lse_i - <T_r, S>]
//   L_cols = -(1/N) sum_ij T_c,ij log softmax_i(s_.j)_i = (1/N) [sum_j clse_j - <T_c, S>]
//   L = a_r L_rows + a_c L_cols     (a = 1, 1 for Sum; 1/2, 1/2 for Mean; 1, 0 without columns)
// because sum_j T_r,ij = 1 turns -sum_j T_ij (s_ij - lse_i) into lse_i - sum_j T_ij s_ij. Then,
// with alpha = a_r / N, beta = a_c / N and the targets constant (W comes from the frozen tower),
//   G_ij = dL/ds_ij = alpha (e^{s_ij - lse_i} - T_r,ij) + beta (e^{s_ij - clse_j} - T_c,ij),
// the closed form (softmax - targets) / N of each direction. Through s_ij = sigma <p_i, q_j>:
//   dL/dP = sigma G Q,   dL/dQ = sigma G^T P,   dL/dsigma = sum_ij G_ij s_ij / sigma.
// Split G = G_blk - A, where A = alpha T_r + beta T_c collects the LowRank targets (applied as
// W Y = (E (E^T Y) + 1 1^T Y) / 2 in O(N D^2)) and G_blk holds the softmaxes, the Identity
// targets (on the diagonal) and any Block targets (remade elementwise from W's block). Then
//   dL/dP = sigma (G_blk Q - A Q),   dL/dQ = G_blk^T (sigma P) - sigma A^T P,
//   dL/dsigma = sum_ij G_blk,ij s_ij / sigma - <P, A Q>,
// and the loss's target terms are <T, S> = <sigma P, T Q> for LowRank targets, sum_i s_ii for
// Identity ones. The gradient of
// the scale parameter t and of the normalization are applied by the caller (contrastive_loss.cpp).
//
// Memory, block mode: S and G are made one (rows, N) block at a time; the forward keeps lse and
// clse (N each, clse by the online log-sum-exp: a column's running max and rescaled sum over the
// row blocks).
// The backward remakes each block of S (one GEMM), turns it into G in place, and multiplies it
// into dP's rows and into dQ. Work: forward 1 GEMM (N x N x D), backward 1 + 1 per needed
// gradient (P, Q); Block targets add one GEMM (E E^T) to each pass, LowRank ones O(N D^2) to the
// forward only (T Q is kept), and to the backward only when Q needs a gradient.
// Whole-matrix mode (forward_whole) runs the same algebra on one N x N buffer: S once, lse and
// clse, G in place, then G Q (and G^T P) straight away: one GEMM fewer, gradients for an
// upstream gradient of 1 kept for the backward to scale.
#include "losses/contrastive_fused.h"

#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#include "core/ops.h"
#include "losses/block_kernels.h"

namespace cw::losses::fused {
namespace {

// A scalar on any device, read on the host in double.
double host_value(const Tensor& t) { return t.to(Device::cpu()).to(DType::F64).item(); }

// <a, b> summed over all elements, in double.
double dot_all(const Tensor& a, const Tensor& b) { return host_value(ops::sum(ops::mul(a, b))); }
double sum_all(const Tensor& t) { return host_value(ops::sum(t)); }

// An (N) f64 vector as an (N, 1) column of `dtype`, to scale rows.
Tensor column_of(const Tensor& v, DType dtype) { return v.reshape({v.numel(), 1}).to(dtype); }

// W's row blocks for a forward or backward pass (nothing to make when no direction needs them).
weights::WeightBlocks weight_source(const Inputs& in, const TargetPlan& plan, const Saved& sv) {
  if (!plan.uses_blocks()) return {};
  return weights::weight_blocks(in.e, plan.weights, &sv.topk);
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
  sv.block_rows = blocks::choose_block_rows(n, blocked_w ? 2 : 1, block_rows);
  sv.lse = ops::zeros({n}, DType::F64, device);
  if (plan.rows == TargetForm::Block) sv.r = ops::zeros({n}, DType::F64, device);
  const weights::WeightBlocks ws = weight_source(in, plan, sv);
  if (blocked_w && plan.weights.mask == WeightMask::TopK)
    sv.topk = weights::topk_neighbours(ws.e_host, plan.weights.top_k, block_rows);
  if (plan.rows == TargetForm::LowRank) sv.r = weights::linear_weights_row_sums(in.e).to(DType::F64);

  const Tensor ps = ops::mul(in.p, in.scale);  // sigma P: S's blocks are (sigma P_blk) Q^T
  const Tensor qt = in.q.t();
  Tensor s_buf = Tensor::empty({sv.block_rows, n}, in.p.dtype(), device);
  Tensor w_buf = blocked_w ? Tensor::empty({sv.block_rows, n}, in.p.dtype(), device) : Tensor();
  XentColumnState cols = ops::xent_column_state(n, plan.cols == TargetForm::Block, device);
  double row_block_term = 0.0;
  for (int64_t i0 = 0; i0 < n; i0 += sv.block_rows) {
    const int64_t rows = std::min(sv.block_rows, n - i0);
    Tensor s = s_buf.narrow(0, 0, rows), w;
    blocks::gemm_into(ps.narrow(0, i0, rows), qt, s);
    if (blocked_w) {
      Tensor buf = w_buf.narrow(0, 0, rows);
      w = ws.block(i0, buf);
    }
    const XentRowTotals rt = ops::xent_row_pass(s, w, i0, plan.rows == TargetForm::Block, sv.lse, sv.r);
    out.correct_rows += rt.correct;
    out.diag_sum += rt.diag;
    out.total_sum += rt.total;
    row_block_term += rt.target_term;
    ops::xent_column_pass(s, w, i0, has_cols, plan.cols == TargetForm::Block, cols);
  }
  out.correct_cols = correct_columns(cols);

  // Target terms <T, S> of each direction: blockwise sums, or <sigma P, T Q> for operators; the
  // products T Q are kept for the backward (O(N D)).
  std::tie(sv.rows_tq, sv.cols_tq) = target_products(plan, in.e, row_inverse(sv, in.p.dtype()), in.q);
  const double row_term = target_term(plan.rows, out.diag_sum, row_block_term, ps, sv.rows_tq);
  out.loss_rows = (sum_all(sv.lse) - row_term) / static_cast<double>(n);
  out.loss_cols = std::numeric_limits<double>::quiet_NaN();
  if (has_cols) {
    sv.clse = ops::add(cols.max, ops::log(cols.sum));
    double col_block_term = 0.0;
    if (plan.cols == TargetForm::Block) {
      col_block_term = sum_all(ops::div(cols.wdot, cols.wsum));
      sv.c = cols.wsum;
    }
    const double col_term = target_term(plan.cols, out.diag_sum, col_block_term, ps, sv.cols_tq);
    out.loss_cols = (sum_all(sv.clse) - col_term) / static_cast<double>(n);
  }
  out.loss = plan.row_weight * out.loss_rows + (has_cols ? plan.col_weight * out.loss_cols : 0.0);
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
  Tensor dp = need_p ? Tensor::empty(in.p.shape(), in.p.dtype(), device) : Tensor();
  Tensor dq = need_q ? ops::zeros(in.q.shape(), in.q.dtype(), device) : Tensor();
  Tensor dq_part = need_q && b < n ? Tensor::empty(in.q.shape(), in.q.dtype(), device) : Tensor();
  const XentGradCoeffs coeffs = coeffs_of(plan, alpha, beta, false);
  const auto [clse, cinv] = column_vectors(sv, coeffs, in.p.dtype());
  double gs = 0.0;  // sum_ij G_blk,ij s_ij
  for (int64_t i0 = 0; i0 < n; i0 += b) {
    const int64_t rows = std::min(b, n - i0);
    Tensor s = s_buf.narrow(0, 0, rows), w;
    blocks::gemm_into(ps.narrow(0, i0, rows), qt, s);
    if (blocked_w) {
      Tensor buf = w_buf.narrow(0, 0, rows);
      w = ws.block(i0, buf);
    }
    gs += ops::xent_gradient_(s, w, i0, coeffs, sv.lse, clse, sv.r, cinv).gs;
    if (need_p) {
      Tensor dp_rows = dp.narrow(0, i0, rows);
      blocks::gemm_into(s, in.q, dp_rows);  // G_blk Q
    }
    if (need_q) {
      if (b >= n) {
        blocks::gemm_into(s.t(), ps.narrow(0, i0, rows), dq);  // one block: G^T (sigma P)
      } else {
        blocks::gemm_into(s.t(), ps.narrow(0, i0, rows), dq_part);
        blocks::add_into(dq, dq_part);
      }
    }
  }

  // A Q from the forward's products; A^T P only when q wants a gradient.
  Tensor aq;
  if (sv.rows_tq.defined()) aq = ops::mul(sv.rows_tq, alpha);
  if (sv.cols_tq.defined())
    aq = aq.defined() ? ops::add(aq, ops::mul(sv.cols_tq, beta)) : ops::mul(sv.cols_tq, beta);
  if (need_p) g.p = ops::mul(aq.defined() ? ops::sub(dp, aq) : dp, in.scale);
  if (need_q) {
    const Tensor atp =
        transposed_operator_targets(plan, alpha, beta, in.e, row_inverse(sv, in.p.dtype()), in.p);
    g.q = atp.defined() ? ops::sub(dq, ops::mul(atp, in.scale)) : dq;
  }
  if (need_scale) g.scale = gs / in.scale - (aq.defined() ? dot_all(in.p, aq) : 0.0);
  return g;
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
  blocks::gemm_into(ps, in.q.t(), s);
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
      sv.topk = weights::topk_neighbours(ws.e_host, plan.weights.top_k, block_rows);
    std::tie(sv.r, sv.c) = ws.sums(block_rows);
  } else if (plan.rows == TargetForm::LowRank) {
    sv.r = weights::linear_weights_row_sums(in.e).to(DType::F64);
  }

  // S -> G in place, row block by row block (W's blocks made alongside), summing the target
  // terms of the loss on the way.
  const XentGradCoeffs coeffs = coeffs_of(plan, alpha, beta, /*target_terms=*/true);
  const auto [clse, cinv] = column_vectors(sv, coeffs, in.p.dtype());
  const int64_t b = blocked_w ? blocks::choose_block_rows(n, 1, block_rows) : n;
  Tensor w_buf = blocked_w ? Tensor::empty({b, n}, in.p.dtype(), device) : Tensor();
  XentGradTotals totals;
  for (int64_t i0 = 0; i0 < n; i0 += b) {
    const int64_t rows = std::min(b, n - i0);
    Tensor g = s.narrow(0, i0, rows), w;
    if (blocked_w) {
      Tensor buf = w_buf.narrow(0, 0, rows);
      w = ws.block(i0, buf);
    }
    const XentGradTotals t = ops::xent_gradient_(g, w, i0, coeffs, sv.lse, clse, sv.r, cinv);
    totals.gs += t.gs;
    totals.row_term += t.row_term;
    totals.col_term += t.col_term;
  }
  w_buf = Tensor();

  // The loss, then the gradients for an upstream gradient of 1 (the backward scales them).
  const Tensor rinv = row_inverse(sv, in.p.dtype());
  const auto [rows_tq, cols_tq] = target_products(plan, in.e, rinv, in.q);
  const double row_term = target_term(plan.rows, out.diag_sum, totals.row_term, ps, rows_tq);
  out.loss_rows = (sum_all(sv.lse) - row_term) / static_cast<double>(n);
  out.loss_cols = std::numeric_limits<double>::quiet_NaN();
  if (has_cols) {
    const double col_term = target_term(plan.cols, out.diag_sum, totals.col_term, ps, cols_tq);
    out.loss_cols = (sum_all(sv.clse) - col_term) / static_cast<double>(n);
  }
  out.loss = plan.row_weight * out.loss_rows + (has_cols ? plan.col_weight * out.loss_cols : 0.0);

  Tensor aq;  // A Q, A = alpha T_r + beta T_c over the LowRank directions
  if (rows_tq.defined()) aq = ops::mul(rows_tq, alpha);
  if (cols_tq.defined()) aq = aq.defined() ? ops::add(aq, ops::mul(cols_tq, beta)) : ops::mul(cols_tq, beta);
  if (need_p) {
    Tensor gq = Tensor::empty(in.p.shape(), in.p.dtype(), device);
    blocks::gemm_into(s, in.q, gq);  // G Q
    sv.dp = ops::mul(aq.defined() ? ops::sub(gq, aq) : gq, in.scale);
  }
  if (need_q) {
    Tensor gp = Tensor::empty(in.q.shape(), in.q.dtype(), device);
    blocks::gemm_into(s.t(), ps, gp);  // G^T (sigma P)
    const Tensor atp = transposed_operator_targets(plan, alpha, beta, in.e, rinv, in.p);
    sv.dq = atp.defined() ? ops::sub(gp, ops::mul(atp, in.scale)) : gp;
  }
  sv.dscale = totals.gs / in.scale - (aq.defined() ? dot_all(in.p, aq) : 0.0);
  return out;
}

}  // namespace cw::losses::fused
