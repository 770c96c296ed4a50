// The contrastive losses of this project, each one autograd node with a hand-written backward:
// InfoNCE (CLIP's symmetric loss; LiT when the second tower is frozen) and CWCL (PAPER.md),
// plus the batch metrics that come out of the same pass. Part of losses/; the fused math is in
// contrastive_fused.h, the options in contrastive_config.h.
//
// Conventions (decided here, see the README of this folder for the reasons):
// - p (N, D) is the trained tower's embeddings, q (N, D) the frozen tower's (or the second
//   trained tower's, for CLIP): row i of each is pair i. Both are L2-normalized inside the loss
//   (cfg.normalize), with the normalization's backward part of the node.
// - log_scale is t, a one-element Variable: scale = min(exp(t), cfg.max_logit_scale) multiplies
//   the cosines; dL/dt = 0 while clamped. A fixed scale is a t that does not require grad.
// - CWCL's weights come from the frozen embeddings (weight_source, default q) and are constants:
//   no gradient flows through W even when q requires grad (it is a target, like a label).
// - "Mean" of the two directions is (L_rows + L_cols) / 2, CLIP's convention; each direction is
//   itself a mean over the N anchors.
#pragma once

#include "autograd/variable.h"
#include "losses/contrastive_config.h"

namespace cw::losses {

// Computed in the same pass as the loss (host values, no gradient).
struct ContrastiveMetrics {
  double loss_p2q = 0;     // L_rows: p_i against all q_j (U -> V in PAPER.md)
  double loss_q2p = 0;     // L_cols: q_j against all p_i; NaN with ReverseDirection::None
  double acc_p2q = 0;      // fraction of rows i whose first argmax_j s_ij is i
  double acc_q2p = 0;      // fraction of columns j whose first argmax_i s_ij is j
  double pos_sim = 0;      // mean cosine <p_i, q_i> over the pairs
  double neg_sim = 0;      // mean cosine <p_i, q_j> over i != j (0 when N = 1)
  double logit_scale = 0;  // the scale used: min(exp(t), max_logit_scale)
};

struct ContrastiveOutput {
  Variable loss;  // 0-d, p's dtype
  ContrastiveMetrics metrics;
};

// The loss cfg.loss names. weight_source (N, D'): the embeddings CWCL's weights come from when
// they are not q (undefined = q); ignored by InfoNCE.
// Throws ShapeError / DTypeError / DeviceError on mismatched inputs, ValueError on an empty
// batch, a bad option, or NaN / Inf in any input (the message names the tensor and the element).
ContrastiveOutput contrastive_loss(const Variable& p, const Variable& q, const Variable& log_scale,
                                   const ContrastiveConfig& cfg, const Tensor& weight_source = Tensor());

// The same with cfg.loss forced to InfoNCE / CWCL.
ContrastiveOutput info_nce_loss(const Variable& p, const Variable& q, const Variable& log_scale,
                                const ContrastiveConfig& cfg = {});
ContrastiveOutput cwcl_loss(const Variable& p, const Variable& q, const Variable& log_scale,
                            const ContrastiveConfig& cfg = {}, const Tensor& weight_source = Tensor());

// The initial t = log(1 / cfg.init_temperature) as a 0-d leaf, requiring grad when
// cfg.learn_temperature (the train binary registers it as a parameter).
Variable make_log_scale(const ContrastiveConfig& cfg, DType dtype = DType::F32);

}  // namespace cw::losses
