// The option grid the contrastive-loss tests sweep and the two modes of the fused node. The
// reference they compare against is the dense loss of losses/contrastive_reference.h (written
// from PAPER.md, not from the fused code).
#pragma once

#include <string>
#include <vector>

#include "losses/contrastive_config.h"

namespace cw::test {

using losses::ContrastiveConfig;
using losses::DirectionReduction;
using losses::LossKind;
using losses::ReverseDirection;
using losses::WeightKernel;
using losses::WeightMask;

// The two implementations (contrastive_fused.h): the whole-matrix forward that makes the
// gradients, and block mode (automatic blocks, or 3-row blocks so that small batches have many).
struct Mode {
  const char* name;
  int64_t whole_matrix_max_mb, block_rows;
  ContrastiveConfig apply(ContrastiveConfig c) const {
    c.whole_matrix_max_mb = whole_matrix_max_mb;
    c.block_rows = block_rows;
    return c;
  }
};
constexpr Mode kWhole{"whole", 256, 0}, kBlocks{"blocks", 0, 0}, kBlocks3{"blocks of 3", 0, 3};

// Every option combination the tests sweep, with a readable name each.
struct NamedConfig {
  std::string name;
  ContrastiveConfig cfg;
};
inline std::vector<NamedConfig> option_grid() {
  std::vector<NamedConfig> out;
  const ReverseDirection reverses[] = {ReverseDirection::Weighted, ReverseDirection::InfoNCE,
                                       ReverseDirection::None};
  const DirectionReduction reductions[] = {DirectionReduction::Mean, DirectionReduction::Sum};
  for (LossKind loss : {LossKind::InfoNCE, LossKind::CWCL})
    for (WeightKernel kernel : {WeightKernel::Linear, WeightKernel::Exp})
      for (WeightMask mask : {WeightMask::None, WeightMask::TopK, WeightMask::Threshold})
        for (ReverseDirection rev : reverses)
          for (DirectionReduction red : reductions) {
            if (loss == LossKind::InfoNCE && (kernel != WeightKernel::Linear || mask != WeightMask::None))
              continue;
            if (rev == ReverseDirection::None && red == DirectionReduction::Sum) continue;  // same as Mean
            ContrastiveConfig c;
            c.loss = loss;
            c.kernel = kernel;
            c.kernel_temperature = 0.3;
            c.mask = mask;
            c.top_k = 2;
            c.threshold = 0.1;
            c.reverse = rev;
            c.reduction = red;
            std::string name = std::string(to_string(loss));
            if (loss == LossKind::CWCL) name += std::string("/") + to_string(kernel) + "/" + to_string(mask);
            name += std::string("/rev=") + to_string(rev) + "/" + to_string(red);
            if (loss == LossKind::CWCL && kernel == WeightKernel::Linear && mask == WeightMask::None) {
              // Both forms of the linear kernel, whatever the batch size would pick.
              c.linear_weights = losses::LinearWeightsForm::Blockwise;
              out.push_back({name + "/blockwise", c});
              c.linear_weights = losses::LinearWeightsForm::Factored;
              name += "/factored";
            }
            out.push_back({name, c});
          }
  ContrastiveConfig raw;
  raw.normalize = false;
  out.push_back({"cwcl/linear/none/unnormalized", raw});
  raw.loss = LossKind::InfoNCE;
  out.push_back({"infonce/unnormalized", raw});
  return out;
}

// Each option changed alone from the defaults (CWCL) and from CLIP's InfoNCE: the sweep for
// the costly central-difference checks (the full grid is checked against the composed loss).
inline std::vector<NamedConfig> one_at_a_time() {
  std::vector<NamedConfig> out;
  auto add = [&](const std::string& name, auto change) {
    ContrastiveConfig c;
    c.kernel_temperature = 0.3;
    c.top_k = 2;
    c.threshold = 0.1;
    change(c);
    out.push_back({name, c});
  };
  add("cwcl (defaults)", [](ContrastiveConfig&) {});
  add("cwcl linear_weights=factored",
      [](ContrastiveConfig& c) { c.linear_weights = losses::LinearWeightsForm::Factored; });
  add("cwcl linear_weights=blockwise",
      [](ContrastiveConfig& c) { c.linear_weights = losses::LinearWeightsForm::Blockwise; });
  add("cwcl kernel=exp", [](ContrastiveConfig& c) { c.kernel = WeightKernel::Exp; });
  add("cwcl mask=topk", [](ContrastiveConfig& c) { c.mask = WeightMask::TopK; });
  add("cwcl mask=threshold", [](ContrastiveConfig& c) { c.mask = WeightMask::Threshold; });
  add("cwcl reverse=infonce", [](ContrastiveConfig& c) { c.reverse = ReverseDirection::InfoNCE; });
  add("cwcl reverse=none", [](ContrastiveConfig& c) { c.reverse = ReverseDirection::None; });
  add("cwcl reduction=sum", [](ContrastiveConfig& c) { c.reduction = DirectionReduction::Sum; });
  add("cwcl normalize=false", [](ContrastiveConfig& c) { c.normalize = false; });
  add("infonce (CLIP)", [](ContrastiveConfig& c) { c.loss = LossKind::InfoNCE; });
  add("infonce reverse=none", [](ContrastiveConfig& c) {
    c.loss = LossKind::InfoNCE;
    c.reverse = ReverseDirection::None;
  });
  add("infonce reduction=sum", [](ContrastiveConfig& c) {
    c.loss = LossKind::InfoNCE;
    c.reduction = DirectionReduction::Sum;
  });
  add("infonce normalize=false", [](ContrastiveConfig& c) {
    c.loss = LossKind::InfoNCE;
    c.normalize = false;
  });
  return out;
}

}  // namespace cw::test
