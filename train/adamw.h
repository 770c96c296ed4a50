// AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization") with the exact update
// of PyTorch's torch.optim.AdamW, and the split of a model's parameters into decay / no-decay
// groups. Part of train/: the training loop calls make_param_groups once, then per batch
// zero_grad -> backward -> clip_grad_norm -> step(schedule.at(step_count())).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "core/tensor.h"

namespace cw::train {

struct AdamWOptions {
  double lr = 1e-3;  // default learning rate for callers; step() takes the lr explicitly
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.01;  // default for callers building groups; each group carries its own
};

// Parameters that share a weight decay. names[i] belongs to params[i]; the names key the
// optimizer state ("exp_avg.<name>") and so must be unique across all groups.
struct ParamGroup {
  std::vector<std::string> names;
  std::vector<Variable> params;
  double weight_decay = 0.0;
};

// Splits named parameters (Module::named_parameters()) into at most two groups, in input order:
//   group 0: weight_decay = `weight_decay`, every parameter not excluded below;
//   group 1: weight_decay = 0 ("no decay"), a parameter is excluded from decay when
//     - its name ends in "bias", or
//     - it is 1-d (LayerNorm / BatchNorm weights and any other per-channel gain or bias), or
//     - its name contains one of the `extra_no_decay` substrings (e.g. "logit_scale", a 0-d
//       learned temperature, or "position_embeddings" if wanted).
// Parameters with requires_grad() == false (frozen towers) are left out entirely. A group
// that would be empty is not returned. This is the rule of BERT / CLIP / nanoGPT training.
std::vector<ParamGroup> make_param_groups(const std::vector<std::pair<std::string, Variable>>& named,
                                          double weight_decay,
                                          const std::vector<std::string>& extra_no_decay = {});

class AdamW {
 public:
  // Moment buffers are allocated here (zeros, each parameter's dtype and device), so that
  // state_tensors() is complete even before the first step. Throws ValueError on duplicate
  // names, names/params of different lengths, undefined parameters or bad betas/eps.
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options);

  // One update with learning rate `lr`, in place on every parameter that has a gradient, in
  // PyTorch's order (torch/optim/adamw.py, single-tensor path), with t = step_count() + 1:
  //   p      <- p * (1 - lr * wd)                       decoupled weight decay (group's wd)
  //   m      <- beta1 * m + (1 - beta1) * g
  //   v      <- beta2 * v + (1 - beta2) * g^2
  //   p      <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
  // eps is outside the square root. A parameter without a gradient (undefined grad) is left
  // untouched, moments included, as in PyTorch; the step count t is global, though (PyTorch
  // counts per parameter), which differs only for parameters that skip steps.
  void step(double lr);
  // Drops every parameter's gradient (the next backward starts from zero).
  void zero_grad();
  int64_t step_count() const { return step_; }

  const std::vector<ParamGroup>& groups() const { return groups_; }
  const AdamWOptions& options() const { return options_; }

  // Optimizer state for checkpoints: "exp_avg.<name>" and "exp_avg_sq.<name>" for every
  // parameter (tensors share storage with the optimizer: copy or write them out before the next
  // step). The step count travels beside them (see checkpoint.h).
  std::map<std::string, Tensor> state_tensors() const;
  // Restores the moments (copied in, converted to each parameter's dtype and device) and the step
  // count. Every missing, unexpected or wrong-shaped tensor is collected and reported in one
  // ValueError; nothing is changed unless the whole load can succeed.
  void load_state_tensors(const std::map<std::string, Tensor>& state, int64_t step);

 private:
  struct Slot {
    std::string name;
    Variable param;
    double weight_decay;
    Tensor exp_avg, exp_avg_sq;
  };
  std::vector<ParamGroup> groups_;
  AdamWOptions options_;
  std::vector<Slot> slots_;
  int64_t step_ = 0;
};

}  // namespace cw::train
