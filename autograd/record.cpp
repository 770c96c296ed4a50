// Recording one op into the graph (see functions.h: ag::record).
#include "autograd/functions.h"
#include "autograd/grad_mode.h"

namespace cw::ag {

std::vector<Variable> record(const char* name, std::vector<Tensor> outputs,
                             const std::vector<Variable>& inputs, BackwardFn fn) {
  bool any = false;
  for (const Variable& v : inputs) any = any || (v.defined() && v.requires_grad());
  std::vector<Variable> out;
  out.reserve(outputs.size());
  if (!GradMode::is_enabled() || !any) {
    // No graph: the closure (and the tensors it saved) dies here.
    for (Tensor& t : outputs) out.emplace_back(std::move(t), false);
    return out;
  }
  auto node = std::make_shared<FunctionNode>(name, std::move(fn));
  for (const Variable& v : inputs) node->next_edges.push_back(v.defined() ? v.gradient_edge() : Edge{});
  for (const Tensor& t : outputs) node->outputs.push_back({t.shape(), t.dtype(), t.device()});
  for (size_t i = 0; i < outputs.size(); ++i)
    out.push_back(Variable::from_node(std::move(outputs[i]), node, static_cast<uint32_t>(i)));
  return out;
}

Variable record(const char* name, Tensor output, const std::vector<Variable>& inputs, BackwardFn fn) {
  std::vector<Tensor> outs;
  outs.push_back(std::move(output));
  return record(name, std::move(outs), inputs, std::move(fn))[0];
}

}  // namespace cw::ag
