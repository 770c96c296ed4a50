// AdamW update (PyTorch semantics, see adamw.h) and the decay / no-decay parameter split.
// Part of train/. The update of one parameter is one fused kernel on its device
// (ops::adamw_step_; the element formula is core/kernel_math.h's adamw_update).
#include "train/adamw.h"

#include <cmath>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/ops.h"

namespace cw::train {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<ParamGroup> make_param_groups(const std::vector<std::pair<std::string, Variable>>& named,
                                          double weight_decay,
                                          const std::vector<std::string>& extra_no_decay) {
  ParamGroup decay{{}, {}, weight_decay};
  ParamGroup no_decay{{}, {}, 0.0};
  for (const auto& [name, param] : named) {
    if (!param.defined() || !param.requires_grad()) continue;  // frozen: not optimized
    bool exempt = ends_with(name, "bias") || param.dim() <= 1;
    for (const std::string& pattern : extra_no_decay) {
      if (!pattern.empty() && name.find(pattern) != std::string::npos) exempt = true;
    }
    ParamGroup& group = exempt ? no_decay : decay;
    group.names.push_back(name);
    group.params.push_back(param);
  }
  std::vector<ParamGroup> groups;
  if (!decay.params.empty()) groups.push_back(std::move(decay));
  if (!no_decay.params.empty()) groups.push_back(std::move(no_decay));
  return groups;
}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : groups_(std::move(groups)), options_(options) {
  CW_CHECK(options_.beta1 >= 0.0 && options_.beta1 < 1.0 && options_.beta2 >= 0.0 && options_.beta2 < 1.0,
           ValueError, "AdamW: betas must be in [0, 1), got (", options_.beta1, ", ", options_.beta2, ")");
  CW_CHECK(options_.eps >= 0.0, ValueError, "AdamW: eps must be >= 0, got ", options_.eps);
  std::set<std::string> seen;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& group = groups_[gi];
    CW_CHECK(group.names.size() == group.params.size(), ValueError, "AdamW: group ", gi, " has ",
             group.names.size(), " names for ", group.params.size(), " parameters");
    for (size_t i = 0; i < group.params.size(); ++i) {
      const std::string& name = group.names[i];
      const Variable& p = group.params[i];
      CW_CHECK(seen.insert(name).second, ValueError, "AdamW: parameter name '", name,
               "' appears twice (names key the optimizer state and must be unique)");
      CW_CHECK(p.defined(), ValueError, "AdamW: parameter '", name, "' is undefined");
      CW_CHECK(is_floating(p.dtype()), DTypeError, "AdamW: parameter '", name, "' must be floating, got ",
               describe(p.data()));
      slots_.push_back({name, p, group.weight_decay, ops::zeros_like(p.data()), ops::zeros_like(p.data())});
    }
  }
}

void AdamW::step(double lr) {
  const int64_t t = step_ + 1;
  for (Slot& slot : slots_) {
    const Tensor& grad = slot.param.grad();
    if (!grad.defined()) continue;
    Tensor p = slot.param.data();  // handle sharing the parameter's storage: updated in place
    CW_CHECK(grad.shape() == p.shape() && grad.dtype() == p.dtype(), ValueError, "AdamW: gradient of '",
             slot.name, "' is ", describe(grad), ", parameter is ", describe(p));
    const AdamWStep s{1.0 - lr * slot.weight_decay,
                      lr / (1.0 - std::pow(options_.beta1, static_cast<double>(t))),
                      std::sqrt(1.0 - std::pow(options_.beta2, static_cast<double>(t))),
                      options_.beta1,
                      options_.beta2,
                      options_.eps};
    ops::adamw_step_(p, grad, slot.exp_avg, slot.exp_avg_sq, s);  // one fused pass, on p's device
  }
  step_ = t;
}

void AdamW::zero_grad() {
  for (Slot& slot : slots_) slot.param.zero_grad();
}

std::map<std::string, Tensor> AdamW::state_tensors() const {
  std::map<std::string, Tensor> state;
  for (const Slot& slot : slots_) {
    state["exp_avg." + slot.name] = slot.exp_avg;
    state["exp_avg_sq." + slot.name] = slot.exp_avg_sq;
  }
  return state;
}

void AdamW::load_state_tensors(const std::map<std::string, Tensor>& state, int64_t step) {
  CW_CHECK(step >= 0, ValueError, "AdamW::load_state_tensors: step must be >= 0, got ", step);
  std::vector<std::string> missing, mismatched;
  std::set<std::string> expected;
  for (const Slot& slot : slots_) {
    for (const std::string& key : {"exp_avg." + slot.name, "exp_avg_sq." + slot.name}) {
      expected.insert(key);
      auto it = state.find(key);
      if (it == state.end()) {
        missing.push_back(key);
      } else if (it->second.shape() != slot.param.shape()) {
        mismatched.push_back(key + ": checkpoint " + describe(it->second) + " vs parameter " +
                             describe(slot.param.data()));
      }
    }
  }
  std::vector<std::string> unexpected;
  for (const auto& [key, value] : state) {
    if (!expected.count(key)) unexpected.push_back(key);
  }
  if (!missing.empty() || !mismatched.empty() || !unexpected.empty()) {
    std::ostringstream os;
    os << "AdamW::load_state_tensors: optimizer state does not match the parameters";
    auto list = [&](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      os << "; " << what << " (" << names.size() << "):";
      for (const std::string& n : names) os << " " << n;
    };
    list("missing", missing);
    list("unexpected", unexpected);
    list("wrong shape", mismatched);
    throw ValueError(os.str());
  }
  for (Slot& slot : slots_) {
    slot.exp_avg.copy_(state.at("exp_avg." + slot.name).to(slot.exp_avg.device()));
    slot.exp_avg_sq.copy_(state.at("exp_avg_sq." + slot.name).to(slot.exp_avg_sq.device()));
  }
  step_ = step;
}

}  // namespace cw::train
