// Module: the base of every layer and model, libtorch-style. A module owns named parameters
// (leaf Variables), named buffers (plain tensors such as running statistics) and named child
// modules; names compose with dots ("encoder.layer.0.attention.self.query.weight"), so a
// checkpoint written by PyTorch loads by name when the module tree mirrors it. Part of nn/.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "core/tensor.h"

namespace cw::nn {

// What load_state_dict found wrong; strict loading throws if any list is non-empty.
struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the state dict
  std::vector<std::string> unexpected;  // in the state dict, not in the module
  std::vector<std::string> mismatched;  // "name: checkpoint (a, b) vs module (c, d)"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;
};

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- the tree
  std::vector<std::pair<std::string, Variable>> named_parameters(bool recurse = true) const;
  std::vector<Variable> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  // Every module below this one (not this one), with dotted names.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;
  int64_t num_parameters() const;

  // ---- modes
  // Training mode switches dropout and batch-norm behaviour; it applies to the whole subtree.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Freezes (false) or unfreezes every parameter of the subtree. A frozen module records no
  // graph and keeps no activations when its inputs do not require grad either.
  void requires_grad_(bool on);
  // Drops accumulated gradients (the next backward starts from zero).
  void zero_grad();
  // Moves (or converts) every parameter and buffer.
  void to(Device device);
  void to(DType dtype);
  // Where the first parameter (else buffer) lives, the CPU for an empty module: after to(d),
  // where callers send the module's inputs.
  Device device() const;

  // ---- weights
  // Parameters and buffers by dotted name (tensors share storage with the module).
  std::map<std::string, Tensor> state_dict() const;
  // Copies the tensors in by name (converting dtype). Every missing, unexpected and
  // wrong-shaped tensor is collected; strict mode throws a ValueError listing them all, and a
  // wrong shape always throws. Nothing is copied unless the whole load can succeed.
  LoadReport load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

 protected:
  Variable& register_parameter(const std::string& name, const Tensor& value, bool requires_grad = true);
  void register_buffer(const std::string& name, const Tensor& value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    check_new_name(name);
    children_.emplace_back(name, module);
    return module;
  }
  // Access to a registered buffer (buffers can be replaced, e.g. by to(), so hold names).
  Tensor& buffer(const std::string& name);

 private:
  void check_new_name(const std::string& name) const;

  bool training_ = true;
  std::vector<std::pair<std::string, Variable>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

}  // namespace cw::nn
