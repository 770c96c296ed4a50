// The [loss] section of `train`'s option tables, shared by the speech-text and image-text tasks:
// every field of losses::ContrastiveConfig, declared, checked and written as INI once. The enums
// are read as the user spells them and parsed by losses/contrastive_config.h, which names the
// valid spellings. Part of train/.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "losses/contrastive_config.h"

namespace boost::program_options {
class options_description;
}  // namespace boost::program_options

namespace cw::train {

// The enum options as spelled on the command line or in a config file.
struct LossSpelling {
  std::string kind, kernel, mask, reverse, reduction, linear_weights;
  explicit LossSpelling(const losses::ContrastiveConfig& c);
};

// [loss] bound to `loss`'s fields and `spelling` (their current values are the defaults shown).
void add_loss_options(boost::program_options::options_description& section, losses::ContrastiveConfig& loss,
                      LossSpelling& spelling);

// After parsing: the spellings into `loss`, then every check, each an OptionError naming its
// option: unknown spellings, ranges, contradictions (CWCL-only options with --loss.kind infonce,
// a kernel temperature without the exp kernel, a top_k without the topk mask, ...). An option
// counts as given when `command_line` names it or its value differs from `defaults`: a config
// file from --print-config (or a run's config.ini) lists every option, defaults included, and
// must read back without tripping the checks.
void read_loss_options(losses::ContrastiveConfig& loss, const LossSpelling& spelling,
                       const losses::ContrastiveConfig& defaults,
                       const std::vector<std::string>& command_line);

// "[loss]" and its lines. CWCL's own options are written for CWCL runs only: an InfoNCE config
// that named them would be refused when read back.
void write_loss_ini(std::ostream& s, const losses::ContrastiveConfig& loss);

}  // namespace cw::train
