// The loss configurations and inputs that the global-batch ("local") loss tests run through: the
// in-process split into row blocks (block_loss_test.cpp) and the real split across MPI ranks
// (tests/dist_mpi). Every option that changes the math: InfoNCE, CWCL with each kernel and
// mask, each reverse direction and reduction, and a separate weight source.
#pragma once

#include <string>
#include <vector>

#include "core/ops.h"
#include "losses/contrastive_config.h"
#include "support/check.h"

namespace cw::test {

struct BlockLossCase {
  std::string name;
  losses::ContrastiveConfig cfg;
  bool weight_source = false;  // CWCL weights from a separate embedding E (N, 5)
  bool q_grad = false;         // both towers trained (CLIP): q gathered too
};

inline std::vector<BlockLossCase> block_loss_cases() {
  using namespace losses;
  std::vector<BlockLossCase> v;
  auto add = [&](std::string name, auto edit, bool ws = false, bool q_grad = false) {
    ContrastiveConfig c;
    c.learn_temperature = true;
    edit(c);
    v.push_back({std::move(name), c, ws, q_grad});
  };
  add("infonce", [](ContrastiveConfig& c) { c.loss = LossKind::InfoNCE; });
  add("infonce_rows_only_sum", [](ContrastiveConfig& c) {
    c.loss = LossKind::InfoNCE;
    c.reverse = ReverseDirection::None;
    c.reduction = DirectionReduction::Sum;
  });
  add(
      "infonce_clip_both_towers", [](ContrastiveConfig& c) { c.loss = LossKind::InfoNCE; }, false, true);
  add("cwcl_linear", [](ContrastiveConfig&) {});
  add("cwcl_linear_factored", [](ContrastiveConfig& c) { c.linear_weights = LinearWeightsForm::Factored; });
  add("cwcl_exp_sum", [](ContrastiveConfig& c) {
    c.kernel = WeightKernel::Exp;
    c.kernel_temperature = 0.3;
    c.reduction = DirectionReduction::Sum;
  });
  add("cwcl_topk", [](ContrastiveConfig& c) {
    c.mask = WeightMask::TopK;
    c.top_k = 3;
  });
  add("cwcl_threshold_reverse_infonce", [](ContrastiveConfig& c) {
    c.mask = WeightMask::Threshold;
    c.threshold = 0.1;
    c.reverse = ReverseDirection::InfoNCE;
  });
  add("cwcl_rows_only", [](ContrastiveConfig& c) { c.reverse = ReverseDirection::None; });
  add(
      "cwcl_weight_source", [](ContrastiveConfig&) {}, true);
  add("cwcl_unnormalized_clamped", [](ContrastiveConfig& c) {
    c.normalize = false;
    c.max_logit_scale = 5.0;  // exp(log(1/0.07)) = 14.3 is clamped: dL/dt = 0
  });
  return v;
}

// The global batch every rank builds identically: P, Q (N, 6), E (N, 5), f64.
struct BlockLossInputs {
  Tensor p, q, e;
};
inline BlockLossInputs block_loss_inputs(int64_t n) {
  return {rand64({n, 6}, -1, 1, 11), rand64({n, 6}, -1, 1, 12), rand64({n, 5}, -1, 1, 13)};
}

}  // namespace cw::test
