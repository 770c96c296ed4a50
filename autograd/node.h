// The backward graph: a Node is the backward of one recorded op. It takes the gradients of the
// op's outputs and returns the gradients of its inputs, which flow along next_edges to the
// Nodes that produced those inputs (or to AccumulateGrad for leaves). Part of autograd/.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cw {

struct VariableImpl;
class Node;

// Where an input's gradient goes: output `input_nr` of node `fn`. A null fn means the input
// does not require grad and its gradient is dropped (never computed, see `needs`).
struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

// What the engine needs to make a zero gradient for an output that got none.
struct OutputMeta {
  Shape shape;
  DType dtype;
  Device device;
};

class Node {
 public:
  // Frees the nodes behind this one iteratively: a long chain would otherwise be destroyed by
  // recursive shared_ptr destructors, one stack frame per node.
  virtual ~Node();
  // grads: one per output (never undefined: the engine fills zeros). Returns one gradient per
  // next edge; an entry may be undefined when that edge is not valid.
  virtual std::vector<Tensor> apply(const std::vector<Tensor>& grads) = 0;
  virtual std::string name() const = 0;
  // Frees saved tensors after a backward pass without retain_graph.
  virtual void release() {}

  std::vector<Edge> next_edges;
  std::vector<OutputMeta> outputs;
};

// Gradient of outputs -> gradients of inputs. `needs[i]` says whether input i wants a gradient,
// so a rule can skip work for frozen inputs (e.g. dW of a frozen Linear).
using Grads = std::vector<Tensor>;
using BackwardFn = std::function<Grads(const Grads& grads, const std::vector<bool>& needs)>;

// A Node whose backward is a closure over the tensors it saved; release() drops the closure
// and with it the saved tensors.
class FunctionNode final : public Node {
 public:
  FunctionNode(std::string name, BackwardFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(const std::vector<Tensor>& grads) override;
  std::string name() const override { return name_; }
  void release() override { fn_ = nullptr; }

 private:
  std::string name_;
  BackwardFn fn_;
};

// Sink for a leaf Variable: adds the incoming gradient into the leaf's .grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::weak_ptr<VariableImpl> var) : var_(std::move(var)) {}
  std::vector<Tensor> apply(const std::vector<Tensor>& grads) override;
  std::string name() const override { return "AccumulateGrad"; }

 private:
  std::weak_ptr<VariableImpl> var_;
};

}  // namespace cw
