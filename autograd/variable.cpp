// Variable and the two built-in nodes, FunctionNode and AccumulateGrad (see variable.h, node.h).
#include "autograd/variable.h"

#include "autograd/engine.h"
#include "core/ops.h"

namespace cw {

Variable::Variable(Tensor data, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  CW_CHECK(data.defined(), ValueError, "Variable: cannot wrap an undefined tensor");
  CW_CHECK(!requires_grad || is_floating(data.dtype()), DTypeError,
           "Variable: only floating tensors can require grad, got ", describe(data));
  impl_->data = std::move(data);
  impl_->requires_grad = requires_grad;
}

Variable Variable::from_node(Tensor data, std::shared_ptr<Node> fn, uint32_t output_nr) {
  Variable v(std::move(data), false);
  v.impl_->requires_grad = true;
  v.impl_->grad_fn = std::move(fn);
  v.impl_->output_nr = output_nr;
  return v;
}

const Tensor& Variable::data() const {
  CW_CHECK(impl_ != nullptr, ValueError, "Variable: undefined variable");
  return impl_->data;
}

void Variable::set_data(const Tensor& t) {
  CW_CHECK(impl_ != nullptr, ValueError, "set_data: undefined variable");
  CW_CHECK(is_leaf(), ValueError, "set_data: only a leaf's value can be replaced");
  CW_CHECK(t.defined(), ValueError, "set_data: undefined tensor");
  CW_CHECK(!impl_->requires_grad || is_floating(t.dtype()), DTypeError,
           "set_data: a variable that requires grad needs a floating tensor, got ", describe(t));
  impl_->data = t;
  impl_->grad = Tensor();
}

const Tensor& Variable::grad() const {
  CW_CHECK(impl_ != nullptr, ValueError, "Variable: undefined variable");
  return impl_->grad;
}

void Variable::set_grad(const Tensor& g) {
  CW_CHECK(!g.defined() || g.shape() == shape(), ShapeError, "set_grad: gradient ", describe(g),
           " does not match the variable ", describe(data()));
  impl_->grad = g;
}

void Variable::zero_grad() {
  if (impl_) impl_->grad = Tensor();
}

Variable& Variable::requires_grad_(bool value) {
  CW_CHECK(is_leaf(), ValueError,
           "requires_grad_: only leaves can change requires_grad; detach() a computed value first");
  CW_CHECK(!value || is_floating(data().dtype()), DTypeError,
           "requires_grad_: only floating tensors can require grad, got ", describe(data()));
  impl_->requires_grad = value;
  return *this;
}

const std::shared_ptr<Node>& Variable::grad_fn() const {
  CW_CHECK(impl_ != nullptr, ValueError, "Variable: undefined variable");
  return impl_->grad_fn;
}

Edge Variable::gradient_edge() const {
  if (!requires_grad()) return {};
  if (impl_->grad_fn) return {impl_->grad_fn, impl_->output_nr};
  // A leaf: share one AccumulateGrad among all graphs that use it, created on demand and owned
  // by those graphs (the leaf holds it weakly, so there is no reference cycle).
  std::shared_ptr<Node> acc = impl_->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(impl_);
    acc->outputs.push_back({shape(), dtype(), device()});
    impl_->grad_accumulator = acc;
  }
  return {acc, 0};
}

void Variable::backward(const Tensor& grad, bool retain_graph) const {
  run_backward({*this}, {grad}, retain_graph);
}

Node::~Node() {
  std::vector<std::shared_ptr<Node>> stack;
  for (Edge& e : next_edges)
    if (e.fn) stack.push_back(std::move(e.fn));
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (n.use_count() == 1) {  // we hold the last reference: take over its edges first
      for (Edge& e : n->next_edges)
        if (e.fn) stack.push_back(std::move(e.fn));
      n->next_edges.clear();
    }
  }  // n is destroyed here with no edges left, so its destructor does not recurse
}

std::vector<Tensor> FunctionNode::apply(const std::vector<Tensor>& grads) {
  CW_CHECK(fn_ != nullptr, ValueError, "backward: ", name_,
           " was already run and its saved tensors freed; pass retain_graph=true to the first "
           "backward to run it twice");
  std::vector<bool> needs(next_edges.size());
  for (size_t i = 0; i < next_edges.size(); ++i) needs[i] = next_edges[i].valid();
  return fn_(grads, needs);
}

std::vector<Tensor> AccumulateGrad::apply(const std::vector<Tensor>& grads) {
  auto var = var_.lock();
  if (!var) return {};  // the leaf is gone; nobody can read its gradient
  const Tensor& g = grads.at(0);
  CW_CHECK(g.shape() == var->data.shape(), ShapeError, "AccumulateGrad: gradient ", describe(g),
           " does not match the leaf ", describe(var->data), " (a backward rule is wrong)");
  if (!var->grad.defined()) {
    // Keep the incoming buffer when nothing else holds it; otherwise copy, so that .grad never
    // aliases another tensor.
    var->grad = (g.storage().use_count() == 1 && g.is_contiguous()) ? g : g.clone();
  } else {
    var->grad = ops::add(var->grad, g);
  }
  return {};
}

}  // namespace cw
