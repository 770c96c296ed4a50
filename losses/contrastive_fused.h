// The fused forward and hand-written backward shared by InfoNCE (CLIP/LiT) and CWCL, on plain
// tensors. Block mode: logits S = scale P Q^T are made block by block of rows and never kept;
// the forward keeps only per-row and per-column log-sum-exps (and W's sums), the backward remakes
// each block. Whole-matrix mode (N x N fits the configured budget): one N x N buffer inside the
// forward, which also makes the gradients. contrastive_loss.h wraps either into one autograd
// node. Derivation in contrastive_fused.cpp.
// Part of losses/.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "losses/contrastive_config.h"
#include "losses/cwcl_weights.h"

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
// Block mode. block_rows: 0 = automatic (blocks::choose_block_rows).
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

}  // namespace cw::losses::fused
