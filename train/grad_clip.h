// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_ (norm_type 2). Part of
// train/; called between backward and the optimizer step.
#pragma once

#include <vector>

#include "autograd/variable.h"

namespace cw::train {

// Computes the L2 norm of all gradients together (accumulated in f64; parameters without a
// gradient are skipped) and returns it, as measured before any clipping. When it exceeds
// max_norm, every gradient is scaled by max_norm / (norm + 1e-6) (PyTorch's coefficient); when
// it does not, the gradients are untouched. A non-finite norm (NaN / inf) is returned as is
// and the gradients are left untouched: the caller decides (the training loop stops).
// max_norm must be > 0 (ValueError otherwise).
double clip_grad_norm(const std::vector<Variable>& params, double max_norm);

// The same global L2 norm, without clipping (for logging).
double grad_norm(const std::vector<Variable>& params);

}  // namespace cw::train
