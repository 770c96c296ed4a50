// The [loss] section (see loss_options.h).
#include "train/loss_options.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <map>

#include "core/error.h"
#include "train/option_default.h"
#include "train/option_reading.h"

namespace cw::train {
namespace po = boost::program_options;

LossSpelling::LossSpelling(const losses::ContrastiveConfig& c)
    : kind(losses::to_string(c.loss)),
      kernel(losses::to_string(c.kernel)),
      mask(losses::to_string(c.mask)),
      reverse(losses::to_string(c.reverse)),
      reduction(losses::to_string(c.reduction)),
      linear_weights(losses::to_string(c.linear_weights)) {}

void add_loss_options(po::options_description& section, losses::ContrastiveConfig& o, LossSpelling& s) {
  section.add_options()("loss.kind", with_default(&s.kind), "cwcl | infonce (CLIP/LiT)")(
      "loss.kernel", with_default(&s.kernel),
      "CWCL weight kernel: linear (paper: cos/2 + 1/2) | exp (exp((cos - 1) / kernel_temperature))")(
      "loss.kernel_temperature", with_default(&o.kernel_temperature), "temperature of the exp kernel")(
      "loss.mask", with_default(&s.mask), "sparsify CWCL weights: none | topk | threshold")(
      "loss.top_k", with_default(&o.top_k), "k of the topk mask")(
      "loss.threshold", with_default(&o.threshold), "cosine threshold of the threshold mask")(
      "loss.reverse", with_default(&s.reverse),
      "reverse (frozen -> trained) direction: weighted | infonce | none")(
      "loss.reduction", with_default(&s.reduction), "combine the two directions: mean | sum")(
      "loss.init_temperature", with_default(&o.init_temperature), "initial temperature (logit scale 1/T)")(
      "loss.learn_temperature", with_default(&o.learn_temperature),
      "learn the logit scale (CLIP) or keep it fixed")(
      "loss.max_logit_scale", with_default(&o.max_logit_scale), "clamp of the logit scale")(
      "loss.linear_weights", with_default(&s.linear_weights),
      "linear-kernel implementation: auto | factored | blockwise (speed only)")(
      "loss.block_rows", with_default(&o.block_rows), "logit rows per block (0: automatic; speed only)")(
      "loss.whole_matrix_max_mb", with_default(&o.whole_matrix_max_mb),
      "largest N x N matrix made whole, MiB (speed/memory only)");
}

void read_loss_options(losses::ContrastiveConfig& o, const LossSpelling& s,
                       const losses::ContrastiveConfig& defaults,
                       const std::vector<std::string>& command_line) {
  // The parsers name the valid spellings but not the option; say which option it was.
  auto parse_as = [](const char* option, auto parse, const std::string& value) {
    try {
      return parse(value);
    } catch (const ValueError& e) {
      throw OptionError(std::string("--") + option + ": " + e.what());
    }
  };
  o.loss = parse_as("loss.kind", losses::parse_loss_kind, s.kind);
  o.kernel = parse_as("loss.kernel", losses::parse_weight_kernel, s.kernel);
  o.mask = parse_as("loss.mask", losses::parse_weight_mask, s.mask);
  o.reverse = parse_as("loss.reverse", losses::parse_reverse_direction, s.reverse);
  o.reduction = parse_as("loss.reduction", losses::parse_direction_reduction, s.reduction);
  o.linear_weights = parse_as("loss.linear_weights", losses::parse_linear_weights_form, s.linear_weights);
  try {
    o.validate();
  } catch (const ValueError& e) {
    throw OptionError(std::string("[loss] options: ") + e.what());
  }

  const std::map<std::string, bool> non_default = {
      {"loss.kernel", o.kernel != defaults.kernel},
      {"loss.kernel_temperature", o.kernel_temperature != defaults.kernel_temperature},
      {"loss.mask", o.mask != defaults.mask},
      {"loss.top_k", o.top_k != defaults.top_k},
      {"loss.threshold", o.threshold != defaults.threshold}};
  auto given = [&](const std::string& name) {
    return non_default.at(name) ||
           std::find(command_line.begin(), command_line.end(), name) != command_line.end();
  };
  if (o.loss == losses::LossKind::InfoNCE)
    for (const char* n :
         {"loss.kernel", "loss.kernel_temperature", "loss.mask", "loss.top_k", "loss.threshold"})
      CW_CHECK(!given(n), OptionError, "--", n, " is a CWCL option but --loss.kind is infonce");
  if (o.kernel != losses::WeightKernel::Exp)
    CW_CHECK(!given("loss.kernel_temperature"), OptionError,
             "--loss.kernel_temperature is set but --loss.kernel is not exp");
  CW_CHECK(!(given("loss.top_k") && o.mask != losses::WeightMask::TopK), OptionError,
           "--loss.top_k is set but --loss.mask is not topk");
  CW_CHECK(!(given("loss.threshold") && o.mask != losses::WeightMask::Threshold), OptionError,
           "--loss.threshold is set but --loss.mask is not threshold");
  // Sizes that feed allocations.
  check_count("loss.top_k", o.top_k, 1, kMaxBatch, "pairs of a batch, at most 65536");
  check_count("loss.block_rows", o.block_rows, 0, kMaxBatch,
              "0: automatic; rows of a batch's logits, at most 65536");
  check_count("loss.whole_matrix_max_mb", o.whole_matrix_max_mb, 0, int64_t{1} << 20,
              "MiB; 1 TiB is more memory than any machine has");
}

void write_loss_ini(std::ostream& s, const losses::ContrastiveConfig& loss) {
  const auto b = [](bool v) { return v ? "true" : "false"; };
  s << "[loss]\nkind = " << losses::to_string(loss.loss);
  if (loss.loss == losses::LossKind::CWCL)
    s << "\nkernel = " << losses::to_string(loss.kernel)
      << "\nkernel_temperature = " << loss.kernel_temperature << "\nmask = " << losses::to_string(loss.mask)
      << "\ntop_k = " << loss.top_k << "\nthreshold = " << loss.threshold;
  s << "\nreverse = " << losses::to_string(loss.reverse)
    << "\nreduction = " << losses::to_string(loss.reduction)
    << "\ninit_temperature = " << loss.init_temperature
    << "\nlearn_temperature = " << b(loss.learn_temperature) << "\nmax_logit_scale = " << loss.max_logit_scale
    << "\nlinear_weights = " << losses::to_string(loss.linear_weights) << "\nblock_rows = " << loss.block_rows
    << "\nwhole_matrix_max_mb = " << loss.whole_matrix_max_mb << "\n\n";
}

}  // namespace cw::train
