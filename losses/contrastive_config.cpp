// Validation, names and parsers of the contrastive-loss options (see contrastive_config.h).
#include "losses/contrastive_config.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>
#include <utility>

#include "core/error.h"

namespace cw::losses {
namespace {

// One table per enum: the spelling is both what to_string prints and what parse accepts, so the
// two cannot drift apart.
template <class E, size_t N>
using Names = std::array<std::pair<E, const char*>, N>;

constexpr Names<LossKind, 2> kLossNames{{{LossKind::InfoNCE, "infonce"}, {LossKind::CWCL, "cwcl"}}};
constexpr Names<WeightKernel, 2> kKernelNames{{{WeightKernel::Linear, "linear"}, {WeightKernel::Exp, "exp"}}};
constexpr Names<WeightMask, 3> kMaskNames{
    {{WeightMask::None, "none"}, {WeightMask::TopK, "topk"}, {WeightMask::Threshold, "threshold"}}};
constexpr Names<ReverseDirection, 3> kReverseNames{{{ReverseDirection::Weighted, "weighted"},
                                                    {ReverseDirection::InfoNCE, "infonce"},
                                                    {ReverseDirection::None, "none"}}};
constexpr Names<DirectionReduction, 2> kReductionNames{
    {{DirectionReduction::Sum, "sum"}, {DirectionReduction::Mean, "mean"}}};
constexpr Names<LinearWeightsForm, 3> kFormNames{{{LinearWeightsForm::Auto, "auto"},
                                                  {LinearWeightsForm::Factored, "factored"},
                                                  {LinearWeightsForm::Blockwise, "blockwise"}}};

template <class E, size_t N>
const char* name_of(const Names<E, N>& names, E v) {
  for (const auto& [e, s] : names)
    if (e == v) return s;
  return "?";
}

template <class E, size_t N>
E parse(const Names<E, N>& names, const std::string& s, const char* what) {
  std::string valid;
  for (const auto& [e, name] : names) {
    if (s == name) return e;
    valid += valid.empty() ? name : std::string(", ") + name;
  }
  throw ValueError(detail::cat("contrastive loss: unknown ", what, " '", s, "' (valid: ", valid, ")"));
}

}  // namespace

void ContrastiveConfig::validate() const {
  CW_CHECK(std::isfinite(kernel_temperature) && kernel_temperature > 0, ValueError,
           "contrastive loss: kernel_temperature must be > 0, got ", kernel_temperature);
  CW_CHECK(top_k >= 1, ValueError, "contrastive loss: top_k must be >= 1, got ", top_k);
  CW_CHECK(std::isfinite(threshold), ValueError, "contrastive loss: threshold must be finite");
  CW_CHECK(std::isfinite(init_temperature) && init_temperature > 0, ValueError,
           "contrastive loss: init_temperature must be > 0, got ", init_temperature);
  CW_CHECK(std::isfinite(max_logit_scale) && max_logit_scale > 0, ValueError,
           "contrastive loss: max_logit_scale must be > 0, got ", max_logit_scale);
  CW_CHECK(normalize_eps > 0, ValueError, "contrastive loss: normalize_eps must be > 0, got ", normalize_eps);
  CW_CHECK(whole_matrix_max_mb >= 0, ValueError, "contrastive loss: whole_matrix_max_mb must be >= 0, got ",
           whole_matrix_max_mb);
  CW_CHECK(block_rows >= 0, ValueError, "contrastive loss: block_rows must be >= 0 (0 = auto), got ",
           block_rows);
}

const char* to_string(LossKind v) { return name_of(kLossNames, v); }
const char* to_string(WeightKernel v) { return name_of(kKernelNames, v); }
const char* to_string(WeightMask v) { return name_of(kMaskNames, v); }
const char* to_string(ReverseDirection v) { return name_of(kReverseNames, v); }
const char* to_string(DirectionReduction v) { return name_of(kReductionNames, v); }
const char* to_string(LinearWeightsForm v) { return name_of(kFormNames, v); }

LossKind parse_loss_kind(const std::string& s) { return parse(kLossNames, s, "loss"); }
WeightKernel parse_weight_kernel(const std::string& s) { return parse(kKernelNames, s, "weight kernel"); }
WeightMask parse_weight_mask(const std::string& s) { return parse(kMaskNames, s, "weight mask"); }
ReverseDirection parse_reverse_direction(const std::string& s) {
  return parse(kReverseNames, s, "reverse direction");
}
DirectionReduction parse_direction_reduction(const std::string& s) {
  return parse(kReductionNames, s, "direction reduction");
}
LinearWeightsForm parse_linear_weights_form(const std::string& s) {
  return parse(kFormNames, s, "linear weights form");
}

std::string describe(const ContrastiveConfig& c) {
  std::ostringstream os;
  os << "loss=" << to_string(c.loss);
  if (c.loss == LossKind::CWCL) {
    os << " kernel=" << to_string(c.kernel);
    if (c.kernel == WeightKernel::Exp) os << " kernel_temperature=" << c.kernel_temperature;
    os << " mask=" << to_string(c.mask);
    if (c.mask == WeightMask::TopK) os << " top_k=" << c.top_k;
    if (c.mask == WeightMask::Threshold) os << " threshold=" << c.threshold;
  }
  os << " reverse=" << to_string(c.reverse) << " reduction=" << to_string(c.reduction)
     << " normalize=" << (c.normalize ? "true" : "false") << " init_temperature=" << c.init_temperature
     << " learn_temperature=" << (c.learn_temperature ? "true" : "false")
     << " max_logit_scale=" << c.max_logit_scale << " whole_matrix_max_mb=" << c.whole_matrix_max_mb
     << " block_rows=" << c.block_rows << " linear_weights=" << to_string(c.linear_weights);
  return os.str();
}

int64_t choose_block_rows(int64_t n, int64_t buffers, int64_t requested) {
  if (n <= 0) return 1;
  if (requested > 0) return std::min(requested, n);
  int64_t b = std::max<int64_t>(32, kBlockElements / n);
  b = std::min(b, std::max<int64_t>(1, n / std::max<int64_t>(buffers, 1)));
  return std::clamp<int64_t>(b, 1, n);
}

}  // namespace cw::losses
