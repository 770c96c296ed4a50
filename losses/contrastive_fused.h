// The fused forward and hand-written backward shared by InfoNCE (CLIP/LiT) and CWCL, on plain
// tensors: the same loss as the dense definition of contrastive_reference.h, in O(N) memory
// beyond one N x N buffer at most. contrastive_loss.h wraps it into one autograd node, and
// contrastive_block.h's row-block form (data parallelism) is built from the same pieces.
// Part of losses/.
//
// The algebra, once for every form. P, Q (N, D) unit rows, sigma the logit scale,
// S = sigma P Q^T (N, N). Targets: rows T_r (each row sums to 1), columns T_c (each column
// sums to 1):
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
// Identity ones. The O(N^2) passes over a block of S (lse and first argmax, the online column
// state, G in place) are core primitives (ops::xent_*). The gradient of the scale parameter t
// and of the normalization are applied by the callers (contrastive_loss.cpp, contrastive_block.cpp).
//
// The forms, all made of the pieces above:
// - Block mode (forward + backward): S and G are made one (rows, N) block at a time; the forward
//   keeps lse and clse (N each, clse by the online log-sum-exp: a column's running max and
//   rescaled sum over the row blocks); the backward remakes each block of S (one GEMM), turns it
//   into G in place and multiplies it into dP's rows and into dQ. Work: forward 1 GEMM
//   (N x N x D), backward 1 + 1 per needed gradient; Block targets add one GEMM (E E^T) to each
//   pass, LowRank ones O(N D^2) to the forward only (T Q is kept), and to the backward only when
//   Q needs a gradient.
// - Whole-matrix mode (forward_whole): S once into one N x N buffer, lse and clse, G in place,
//   then G Q (and G^T P) straight away: one GEMM fewer, gradients for an upstream gradient of 1
//   kept for the backward to scale.
// - Row-block form (anchor_block): one direction for a block of anchors only, the direction's
//   terms above restricted to rows [row0, row0 + rows): with X the anchors' tower and C the
//   candidates', S_blk = sigma X_blk C^T, l(k) = lse_k - sum_j t_kj s_kj,
//   G = coeff (softmax(S_blk) - T_blk), dL/dX_blk = sigma G C, dL/dC = G^T (sigma X_blk).
//   The column direction is the row direction of the towers swapped (S^T = sigma Q P^T).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "losses/contrastive_config.h"
#include "losses/cwcl_weights.h"
#include "losses/l2_normalize.h"

namespace cw::losses::fused {

// How one direction's targets are applied:
//   None     the direction is absent;
//   Identity binary targets (InfoNCE): T = I, on the gradient block's diagonal;
//   LowRank  CWCL linear kernel without mask, factored: T = diag(1/r) W or W diag(1/r), applied
//            through W's low-rank form in O(N D^2), never elementwise;
//   Block    any other CWCL weights: W is remade block by block from E and folded into the
//            gradient block elementwise.
enum class TargetForm { None, Identity, LowRank, Block };

struct TargetPlan {
  TargetForm rows = TargetForm::Identity, cols = TargetForm::Identity;
  double row_weight = 1, col_weight = 1;  // a_r, a_c: L = a_r L_rows + a_c L_cols
  weights::WeightSpec weights;
  bool uses_blocks() const { return rows == TargetForm::Block || cols == TargetForm::Block; }
};
// n, d: the batch and the width of the weight embeddings; whole: forward_whole will run. Both
// choose the linear kernel's form (LinearWeightsForm::Auto).
TargetPlan make_plan(const ContrastiveConfig& cfg, int64_t n, int64_t d, bool whole);

struct Inputs {
  Tensor p, q;   // (N, D) unit rows (raw rows when the config says normalize = false)
  Tensor e;      // (N, D') unit rows W is made from (CWCL); undefined for InfoNCE
  double scale;  // the logit scale, > 0
};

// One call's inputs, checked and prepared once for every form: shapes, dtypes and devices
// (ShapeError / DTypeError / DeviceError), an empty batch or NaN / Inf (ValueError naming the
// tensor and the first bad element; every message starts with `op`); the scale
// min(exp(t), max_logit_scale); the rows L2-normalized (cfg.normalize); CWCL's weight embeddings
// (weight_source, or q when undefined) as unit rows, whatever cfg.normalize says.
struct Prepared {
  Inputs in;
  NormalizedRows np, nq;  // the normalizations, for their backward (cfg.normalize)
  bool clamped = false;   // exp(t) > max_logit_scale: the scale is a constant, dL/dt = 0
};
Prepared prepare(const char* op, const Tensor& p, const Tensor& q, const Tensor& log_scale,
                 const ContrastiveConfig& cfg, const Tensor& weight_source);

// What backward needs beyond the inputs: O(N) numbers and O(N D) products, or, after
// forward_whole, the gradients themselves.
struct Saved {
  // (N) f64 vectors on the inputs' device:
  Tensor lse, clse;          // log-sum-exp of each row / column of S (clse undefined without columns)
  Tensor r;                  // row sums of W (CWCL)
  Tensor c;                  // column sums of W (Block columns)
  weights::Neighbours topk;  // the top-k graph (TopK mask)
  Tensor rows_tq, cols_tq;   // T_r Q and T_c Q (N, D) for the LowRank directions
  int64_t block_rows = 1;
  bool eager = false;  // forward_whole: dp, dq, dscale are dL/dP, dL/dQ, dL/dscale
  Tensor dp, dq;
  double dscale = 0;
};

struct Forward {
  double loss = 0;
  double loss_rows = 0, loss_cols = 0;         // L_rows, L_cols (loss_cols NaN when absent)
  int64_t correct_rows = 0, correct_cols = 0;  // in-batch top-1 hits, rows and columns
  double diag_sum = 0, total_sum = 0;          // sums of the pairs' logits and of all logits
  Saved saved;
};
// Block mode. block_rows: 0 = automatic (choose_block_rows).
Forward forward(const Inputs& in, const TargetPlan& plan, int64_t block_rows);

// Whole-matrix mode: S is made once into one N x N buffer, turned into G in place once the row
// and column log-sum-exps are known, and multiplied into dL/dP (need_p) and dL/dQ (need_q)
// right away; dL/dscale always. The buffer is freed before returning, so nothing N x N outlives
// the forward, and a GEMM is saved against block mode (which has to remake S in the backward
// because the column log-sum-exps are only known after a whole pass). Gradients are for an
// upstream gradient of 1; the loss is a scalar, so the backward only scales them.
Forward forward_whole(const Inputs& in, const TargetPlan& plan, int64_t block_rows, bool need_p, bool need_q);

struct Grads {
  Tensor p, q;       // dL/dP, dL/dQ (of the unit rows), undefined unless asked for
  double scale = 0;  // dL/dscale
};
// upstream: dOut/dL, the gradient arriving at the loss. After forward_whole only `saved` is
// read (the inputs may have been dropped).
Grads backward(const Inputs& in, const TargetPlan& plan, const Saved& saved, double upstream, bool need_p,
               bool need_q, bool need_scale);

// The row-block form: one direction for the anchors [row0, row0 + rows) of x (N, D) against
// all N candidates c (N, D), targets I (weights undefined) or W's rows over their sums (weights:
// W's blocks; W is symmetric, so the column direction's targets are W's rows too). The gradients
// are for the direction's share coeff (a / N) of the loss; they are zeros when not asked for.
struct AnchorBlock {
  double loss_sum = 0;  // sum over the block's anchors of l(k) = lse_k - sum_j t_kj s_kj
  int64_t correct = 0;  // anchors whose first argmax is their pair
  double diag = 0, total = 0;
  Tensor d_anchor;  // (rows, D) dL/dX_blk
  Tensor d_cand;    // (N, D) dL/dC
  double gs = 0;    // sum_kj g_kj s_kj: dL/dsigma = gs / sigma
};
AnchorBlock anchor_block(const Tensor& x, const Tensor& c, const weights::WeightBlocks* weights, double scale,
                         int64_t row0, int64_t rows, double coeff, bool need_anchor, bool need_cand);

}  // namespace cw::losses::fused
