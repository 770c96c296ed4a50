// Variable: a Tensor plus what autograd needs (requires_grad, .grad, and for non-leaves the
// Node that made it). A cheap shared handle like Tensor. Differentiable ops on Variables live in
// autograd/functions.h; they record a Node only when grad mode is on and an input requires
// grad, so frozen towers and evaluation keep no activations. In-place ops are deliberately not
// offered on Variables: without them the graph never sees a mutated saved tensor. Part of
// autograd/.
#pragma once

#include <memory>
#include <string>

#include "autograd/node.h"
#include "core/tensor.h"

namespace cw {

struct VariableImpl {
  Tensor data;
  Tensor grad;  // accumulated by backward; undefined until the first backward reaches it
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // the op that produced this value; null for leaves
  uint32_t output_nr = 0;         // which output of grad_fn this is
  std::weak_ptr<Node> grad_accumulator;
};

class Variable {
 public:
  Variable() = default;
  // A leaf. Parameters are leaves with requires_grad = true.
  explicit Variable(Tensor data, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& data() const;
  // Replaces a leaf's value (moving a parameter to another device or dtype); every handle to
  // this Variable sees the new tensor. The gradient is dropped.
  void set_data(const Tensor& t);
  const Tensor& grad() const;
  void set_grad(const Tensor& g);
  // Drops the accumulated gradient (the next backward starts from zero).
  void zero_grad();

  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  // Only leaves can change this; a frozen leaf gets no gradient and records no graph.
  Variable& requires_grad_(bool value = true);
  bool is_leaf() const { return !impl_ || impl_->grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const;
  uint32_t output_nr() const { return impl_->output_nr; }

  // Backpropagates from this value. A one-element value may omit `grad` (taken as 1).
  // Without retain_graph the saved tensors are freed and a second backward through the same
  // graph throws.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  // Same data, cut from the graph.
  Variable detach() const { return Variable(data(), false); }

  // Edge a consumer op should point at: the producing node, or this leaf's AccumulateGrad.
  Edge gradient_edge() const;

  // Conveniences forwarding to the data.
  const Shape& shape() const { return data().shape(); }
  int64_t dim() const { return data().dim(); }
  int64_t size(int64_t d) const { return data().size(d); }
  int64_t numel() const { return data().numel(); }
  DType dtype() const { return data().dtype(); }
  Device device() const { return data().device(); }
  double item() const { return data().item(); }

  // Records that this value is output `output_nr` of `fn` (used by autograd ops).
  static Variable from_node(Tensor data, std::shared_ptr<Node> fn, uint32_t output_nr);

 private:
  std::shared_ptr<VariableImpl> impl_;
};

}  // namespace cw
