// AdamW update (PyTorch semantics, see adamw.h) and the decay / no-decay parameter split.
// Part of train/. Contiguous CPU tensors take one fused loop per parameter; anything else (other
// devices) goes through core ops with the same arithmetic.
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

// The per-step scalars of one update, shared by both code paths.
struct StepScalars {
  double decay;      // 1 - lr * wd
  double step_size;  // lr / (1 - beta1^t)
  double bc2_sqrt;   // sqrt(1 - beta2^t)
  double beta1, beta2, eps;
};

// One fused pass over a contiguous CPU parameter. Element math in double (then stored in T), so
// an f32 run agrees with PyTorch's float arithmetic to rounding and an f64 run exactly in form.
template <class T>
void adamw_cpu(T* p, const T* g, T* m, T* v, int64_t n, const StepScalars& s) {
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    const double gi = static_cast<double>(g[i]);
    const double pi = static_cast<double>(p[i]) * s.decay;
    const double mi = s.beta1 * static_cast<double>(m[i]) + (1.0 - s.beta1) * gi;
    const double vi = s.beta2 * static_cast<double>(v[i]) + (1.0 - s.beta2) * gi * gi;
    const double denom = std::sqrt(vi) / s.bc2_sqrt + s.eps;
    m[i] = static_cast<T>(mi);
    v[i] = static_cast<T>(vi);
    p[i] = static_cast<T>(pi - s.step_size * mi / denom);
  }
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
    const StepScalars s{1.0 - lr * slot.weight_decay,
                        lr / (1.0 - std::pow(options_.beta1, static_cast<double>(t))),
                        std::sqrt(1.0 - std::pow(options_.beta2, static_cast<double>(t))),
                        options_.beta1,
                        options_.beta2,
                        options_.eps};
    if (p.device().is_cpu() && p.is_contiguous() && grad.is_contiguous()) {
      dispatch_float(p.dtype(), "AdamW::step", [&]<class T>() {
        adamw_cpu<T>(p.data<T>(), grad.data<T>(), slot.exp_avg.data<T>(), slot.exp_avg_sq.data<T>(),
                     p.numel(), s);
      });
      continue;
    }
    // Any device: the same formula from core ops, then copied into the live buffers.
    const Tensor decayed = ops::mul(p, s.decay);
    const Tensor m = ops::add(ops::mul(slot.exp_avg, s.beta1), ops::mul(grad, 1.0 - s.beta1));
    const Tensor v =
        ops::add(ops::mul(slot.exp_avg_sq, s.beta2), ops::mul(ops::mul(grad, grad), 1.0 - s.beta2));
    const Tensor denom = ops::add(ops::div(ops::sqrt(v), s.bc2_sqrt), s.eps);
    const Tensor updated = ops::sub(decayed, ops::mul(ops::div(m, denom), s.step_size));
    slot.exp_avg.copy_(m);
    slot.exp_avg_sq.copy_(v);
    p.copy_(updated);
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
