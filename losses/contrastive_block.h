// The contrastive losses over a global batch split across data-parallel ranks (open_clip's
// "local loss"): each rank holds the gathered embeddings of all N pairs but computes only its
// block of rows [row0, row0 + rows): the row direction for its own p_i against every q_j, and
// the column direction for its own q_j against every p_i. Its loss is
//   L_block = a_r (1/N) sum_{i in block} l_rows(i) + a_c (1/N) sum_{j in block} l_cols(j),
// so the sum over the ranks' blocks is exactly the single-process loss of contrastive_loss.h
// over the N pairs (same options, same CWCL weights: W comes from the gathered frozen
// embeddings, a constant). The gradient reaches every row of the gathered p and q (through the
// other direction); the all-gather's backward (dist/) sums it over ranks, which gives each rank
// the single-process gradient of its own rows. Work per rank: O(rows N D) instead of O(N^2 D).
// Part of losses/; same node conventions as contrastive_loss.h.
#pragma once

#include <cstdint>

#include "losses/contrastive_loss.h"

namespace cw::losses {

// p_all, q_all (N, D): every rank's rows, in rank order (the block's pairs are rows
// [row0, row0 + rows) of both). weight_source_all (N, D'): as contrastive_loss's weight_source.
// metrics: this block's share of each batch metric (loss_*, acc_*, pos_sim, neg_sim), so the sum
// over blocks is the global value; logit_scale is the scale itself.
// Throws as contrastive_loss, and ValueError for a block outside [0, N).
ContrastiveOutput contrastive_loss_block(const Variable& p_all, const Variable& q_all,
                                         const Variable& log_scale, const ContrastiveConfig& cfg,
                                         int64_t row0, int64_t rows,
                                         const Tensor& weight_source_all = Tensor());

}  // namespace cw::losses
