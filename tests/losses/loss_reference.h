// Test-side references for the contrastive losses: the same losses composed from autograd
// primitives (ag::log_softmax, ag::matmul, ag::mul, ag::sum) with dense N x N matrices and an
// independent dense construction of CWCL's weights, plus the option grid the tests sweep.
// Written from PAPER.md and contrastive_config.h, not from the fused code.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "losses/contrastive_config.h"

namespace cw::test {

using losses::ContrastiveConfig;
using losses::DirectionReduction;
using losses::LossKind;
using losses::ReverseDirection;
using losses::WeightKernel;
using losses::WeightMask;

// Dense W (N, N) f64 from raw embeddings e, built with plain loops.
inline Tensor reference_weights(const Tensor& e, const ContrastiveConfig& cfg) {
  const int64_t n = e.size(0), d = e.size(1);
  const std::vector<double> x = e.to(DType::F64).to_vector<double>();
  std::vector<double> unit(x.size()), c(n * n), w(n * n);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t k = 0; k < d; ++k) s += x[i * d + k] * x[i * d + k];
    for (int64_t k = 0; k < d; ++k)
      unit[i * d + k] = x[i * d + k] / std::max(std::sqrt(s), cfg.normalize_eps);
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < d; ++k) s += unit[i * d + k] * unit[j * d + k];
      c[i * n + j] = s;
      w[i * n + j] =
          cfg.kernel == WeightKernel::Linear ? s / 2 + 0.5 : std::exp((s - 1) / cfg.kernel_temperature);
    }
  std::vector<char> keep(n * n, 1);
  if (cfg.mask == WeightMask::Threshold)
    for (int64_t i = 0; i < n * n; ++i) keep[i] = c[i] >= cfg.threshold;
  if (cfg.mask == WeightMask::TopK) {
    std::fill(keep.begin(), keep.end(), 0);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int64_t> idx(n);
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(),
                       [&](int64_t a, int64_t b) { return c[i * n + a] > c[i * n + b]; });
      for (int64_t a = 0; a < std::min(cfg.top_k, n); ++a) keep[i * n + idx[a]] = keep[idx[a] * n + i] = 1;
    }
  }
  for (int64_t i = 0; i < n; ++i) keep[i * n + i] = 1;
  for (int64_t i = 0; i < n * n; ++i) w[i] = keep[i] ? w[i] : 0.0;
  return ops::from_vector(w, {n, n});
}

// The loss of contrastive_loss.h composed from primitives; the weights come from e_source.
inline Variable reference_loss(const Variable& zp, const Variable& zq, const Variable& t,
                               const ContrastiveConfig& cfg, const Tensor& e_source) {
  const int64_t n = zp.size(0);
  auto unit = [&](const Variable& z) {
    return cfg.normalize ? ag::div(z, ag::sqrt(ag::sum(ag::mul(z, z), {1}, true))) : z;
  };
  const Variable p = unit(zp), q = unit(zq);
  const double raw = std::exp(t.item());
  const Variable scale =
      raw > cfg.max_logit_scale ? Variable(ops::scalar(cfg.max_logit_scale, DType::F64)) : ag::exp(t);
  const Variable s = ag::mul(ag::matmul(p, ag::transpose(q, 0, 1)), ag::reshape(scale, {}));
  const Tensor eye = ops::from_vector(std::vector<double>(n * n, 0.0), {n, n});
  for (int64_t i = 0; i < n; ++i) eye.data<double>()[i * n + i] = 1.0;
  Tensor t_rows = eye, t_cols = eye;
  if (cfg.loss == LossKind::CWCL) {
    const Tensor w = reference_weights(e_source, cfg);
    t_rows = ops::div(w, ops::sum(w, {1}, true));
    if (cfg.reverse == ReverseDirection::Weighted) t_cols = ops::div(w, ops::sum(w, {0}, true));
  }
  const bool cols = cfg.reverse != ReverseDirection::None;
  const double a = cols && cfg.reduction == DirectionReduction::Mean ? 0.5 : 1.0;
  const Variable l_rows =
      ag::div(ag::neg(ag::sum(ag::mul(ag::log_softmax(s, 1), Variable(t_rows)))), double(n));
  Variable loss = ag::mul(l_rows, a);
  if (cols) {
    const Variable l_cols =
        ag::div(ag::neg(ag::sum(ag::mul(ag::log_softmax(s, 0), Variable(t_cols)))), double(n));
    loss = ag::add(loss, ag::mul(l_cols, a));
  }
  return loss;
}

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
