// The contrastive losses of contrastive_loss.h composed of differentiable ops (matmul,
// log_softmax, ...) instead of the fused node. Two uses:
// - the path for tensors off the CPU: the fused kernels (contrastive_fused.cpp) read host
//   memory, while these ops run on any backend;
// - a second, independent derivation of the same loss, which the tests hold the fused node's
//   values and hand-written gradients against.
// It forms the N x N logits and targets, so its memory is O(N^2) (the fused node's is O(N) in
// block mode). CWCL's weights W are constants (targets, no gradient): they are made by the
// fused code's own weight routine on the host from the frozen embeddings (N x D) and copied to
// the loss's device, so every kernel and mask option gives the same targets on every device.
// Part of losses/.
#pragma once

#include "losses/contrastive_loss.h"

namespace cw::losses {

// Same arguments, options, checks and results (up to rounding) as contrastive_loss; the
// implementation options (whole_matrix_max_mb, block_rows, linear_weights) do not apply.
// log_scale must be on p's device.
ContrastiveOutput contrastive_loss_composed(const Variable& p, const Variable& q, const Variable& log_scale,
                                            const ContrastiveConfig& cfg,
                                            const Tensor& weight_source = Tensor());

}  // namespace cw::losses
