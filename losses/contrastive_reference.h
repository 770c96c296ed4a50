// The contrastive losses written the way the paper states them, to read first: InfoNCE (CLIP's
// symmetric loss, LiT with a frozen tower) and CWCL (PAPER.md, "Loss"), with dense N x N
// matrices, built from differentiable ops (ag::), so autograd gives their gradients. This is the
// definition; the fused node of contrastive_loss.h (contrastive_fused.h derives its algebra) and
// the row-block form of contrastive_block.h compute the same numbers in O(N) memory and are
// tested against these functions. Costs several N x N matrices and an autograd graph: for tests
// and for reading, not for training. Part of losses/.
//
// With P, Q (N, D) the unit rows of the two towers and sigma the logit scale:
//   S = sigma P Q^T                                                     (N, N) logits
//   W_ij = k(<e_i, e_j>), e the frozen tower's unit rows                (N, N) CWCL weights
//     k(c) = c / 2 + 1/2 (Linear, the paper's) or exp((c - 1) / t) (Exp), then the mask
//   T_rows = W / rowsum(W),  T_cols = W / colsum(W)      (InfoNCE: T = I, the pair alone)
//   L_rows = -(1/N) sum_ij T_rows,ij log softmax_j(S_i.)
//   L_cols = -(1/N) sum_ij T_cols,ij log softmax_i(S_.j)
//   L = (L_rows + L_cols) / 2 (Mean) or L_rows + L_cols (Sum), L_rows alone without columns.
#pragma once

#include "autograd/variable.h"
#include "losses/contrastive_config.h"

namespace cw::losses {

// Dense W (N, N) f64 from raw embeddings e (N, D'), normalized here as the loss does
// (e / max(||e||, eps)): the kernel of cfg, then cfg's mask; the pair itself (i == j) is always
// kept. TopK keeps j when it is among the top_k cosines of row i (ties by the lower index) or i
// among j's; Threshold keeps c_ij >= threshold.
Tensor dense_cwcl_weights(const Tensor& e, const ContrastiveConfig& cfg);

// The loss of contrastive_loss.h (cfg.loss, reverse, reduction, the clamp of the scale), composed
// from autograd ops: zp, zq (N, D) the raw embeddings, t the log scale (scale = min(exp(t),
// max_logit_scale); on the clamp the scale is a constant). CWCL's weights come from e_source
// (a constant: no gradient flows through W). With cfg.normalize the rows are divided by their
// norms (no eps: the inputs are never zero rows here).
Variable dense_contrastive_loss(const Variable& zp, const Variable& zq, const Variable& t,
                                const ContrastiveConfig& cfg, const Tensor& e_source);

}  // namespace cw::losses
