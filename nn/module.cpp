// Module (see module.h).
#include "nn/module.h"

#include <algorithm>
#include <set>
#include <sstream>

namespace cw::nn {

std::string LoadReport::str() const {
  std::ostringstream os;
  auto list = [&os](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    os << "\n  " << what << " (" << v.size() << "):";
    for (const auto& s : v) os << "\n    " << s;
  };
  list("missing from the checkpoint", missing);
  list("unexpected in the checkpoint", unexpected);
  list("wrong shape", mismatched);
  return os.str();
}

void Module::check_new_name(const std::string& name) const {
  CW_CHECK(!name.empty() && name.find('.') == std::string::npos, ValueError, "Module: invalid name '", name,
           "' (names are non-empty and contain no dots)");
  auto taken = [&name](const auto& v) {
    return std::any_of(v.begin(), v.end(), [&name](const auto& p) { return p.first == name; });
  };
  CW_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), ValueError, "Module: name '", name,
           "' is already registered");
}

Variable& Module::register_parameter(const std::string& name, const Tensor& value, bool requires_grad) {
  check_new_name(name);
  params_.emplace_back(name, Variable(value, requires_grad));
  return params_.back().second;
}

void Module::register_buffer(const std::string& name, const Tensor& value) {
  check_new_name(name);
  buffers_.emplace_back(name, value);
}

Tensor& Module::buffer(const std::string& name) {
  for (auto& [n, t] : buffers_)
    if (n == name) return t;
  throw ValueError(detail::cat("Module: no buffer named '", name, "'"));
}

std::vector<std::pair<std::string, Variable>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Variable>> out(params_.begin(), params_.end());
  if (recurse)
    for (const auto& [name, child] : children_)
      for (auto& [n, v] : child->named_parameters(true)) out.emplace_back(name + "." + n, v);
  return out;
}

std::vector<Variable> Module::parameters(bool recurse) const {
  std::vector<Variable> out;
  for (auto& [n, v] : named_parameters(recurse)) out.push_back(v);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out(buffers_.begin(), buffers_.end());
  if (recurse)
    for (const auto& [name, child] : children_)
      for (auto& [n, t] : child->named_buffers(true)) out.emplace_back(name + "." + n, t);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  for (const auto& [name, child] : children_) {
    out.emplace_back(name, child);
    for (auto& [n, m] : child->named_modules()) out.emplace_back(name + "." + n, m);
  }
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& v : parameters()) n += v.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::requires_grad_(bool on) {
  for (auto& [name, p] : params_) p.requires_grad_(on);
  for (auto& [name, child] : children_) child->requires_grad_(on);
}

void Module::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
  for (auto& [name, child] : children_) child->zero_grad();
}

void Module::to(Device device) {
  for (auto& [name, p] : params_) p.set_data(p.data().to(device));
  for (auto& [name, b] : buffers_) b = b.to(device);
  for (auto& [name, child] : children_) child->to(device);
}

Device Module::device() const {
  const auto params = named_parameters();
  if (!params.empty()) return params.front().second.device();
  const auto buffers = named_buffers();
  return buffers.empty() ? Device::cpu() : buffers.front().second.device();
}

void Module::to(DType dtype) {
  // Only floating tensors change type: integer buffers (step counters, ids) keep theirs.
  for (auto& [name, p] : params_)
    if (is_floating(p.data().dtype())) p.set_data(p.data().to(dtype));
  for (auto& [name, b] : buffers_)
    if (is_floating(b.dtype())) b = b.to(dtype);
  for (auto& [name, child] : children_) child->to(dtype);
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [n, v] : named_parameters()) out[n] = v.data();
  for (auto& [n, t] : named_buffers()) out[n] = t;
  return out;
}

LoadReport Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  const std::map<std::string, Tensor> mine = state_dict();
  LoadReport report;
  for (const auto& [name, t] : mine) {
    auto it = state.find(name);
    if (it == state.end()) {
      report.missing.push_back(detail::cat(name, " ", shape_str(t.shape())));
    } else if (it->second.shape() != t.shape()) {
      report.mismatched.push_back(detail::cat(name, ": checkpoint ", shape_str(it->second.shape()),
                                              " vs module ", shape_str(t.shape())));
    }
  }
  for (const auto& [name, t] : state)
    if (!mine.count(name)) report.unexpected.push_back(detail::cat(name, " ", shape_str(t.shape())));
  CW_CHECK(report.mismatched.empty() && (!strict || report.ok()), ValueError,
           "load_state_dict: the checkpoint ", "does not match the module", report.str());
  // Copy in place: every handle to a parameter (layers keep them as members) sees the values.
  for (const auto& [name, t] : mine) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    Tensor dst = t;
    // A checkpoint is read on the CPU; the module may live on another device.
    dst.copy_(it->second.to(dst.device()));
  }
  return report;
}

}  // namespace cw::nn
