// The backward engine (see engine.h).
//
// 1. Walk the graph from the roots (explicit stack, no recursion) and count, for every node,
//    how many edges point at it: the gradients it must wait for.
// 2. Seed the roots' input buffers and run nodes whose count reached zero. Each node's input
//    gradients are added into its successors' buffers; a successor runs when all its
//    producers have run. Every node runs once, after everything that feeds it.
// 3. Without retain_graph each node frees its saved tensors right after it runs, so peak
//    memory falls as the backward pass proceeds.
#include "autograd/engine.h"

#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "core/ops.h"

namespace cw {
namespace {

void accumulate(Tensor& slot, const Tensor& g) { slot = slot.defined() ? ops::add(slot, g) : g; }

}  // namespace

void run_backward(const std::vector<Variable>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  CW_CHECK(roots.size() == grads.size(), ValueError, "backward: ", roots.size(), " roots but ", grads.size(),
           " gradients");
  // Backward rules call plain ops on Tensors; nothing they do should be recorded.
  NoGradGuard no_grad;

  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::unordered_map<Node*, int64_t> pending;
  std::vector<std::shared_ptr<Node>> starts;

  for (size_t i = 0; i < roots.size(); ++i) {
    const Variable& r = roots[i];
    CW_CHECK(r.requires_grad(), ValueError,
             "backward: the value does not require grad (no input of the computation requires grad, "
             "or it ran under NoGradGuard)");
    Tensor g = grads[i];
    if (!g.defined()) {
      CW_CHECK(r.numel() == 1, ShapeError,
               "backward: a gradient can only be implied for a one-element "
               "value; pass one for shape ",
               shape_str(r.shape()));
      g = ops::ones(r.shape(), r.dtype(), r.device());
    }
    CW_CHECK(g.shape() == r.shape(), ShapeError, "backward: gradient ", describe(g), " does not match ",
             describe(r.data()));
    const Edge e = r.gradient_edge();
    auto& buf = buffers[e.fn.get()];
    buf.resize(e.fn->outputs.size());
    accumulate(buf[e.input_nr], g);
    starts.push_back(e.fn);
  }

  // 1. Dependency counts over the reachable graph.
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  for (auto& s : starts)
    if (seen.insert(s.get()).second) stack.push_back(s.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.valid()) continue;
      ++pending[e.fn.get()];
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }

  // 2. Run nodes as they become ready.
  std::deque<std::shared_ptr<Node>> ready;
  std::unordered_set<Node*> queued;
  for (auto& s : starts)
    if (pending[s.get()] == 0 && queued.insert(s.get()).second) ready.push_back(s);
  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.front();
    ready.pop_front();
    std::vector<Tensor> in = std::move(buffers[node.get()]);
    buffers.erase(node.get());
    in.resize(node->outputs.size());
    for (size_t k = 0; k < in.size(); ++k)  // outputs that received no gradient contribute zero
      if (!in[k].defined()) {
        const OutputMeta& m = node->outputs[k];
        in[k] = ops::zeros(m.shape, m.dtype, m.device);
      }
    std::vector<Tensor> out = node->apply(in);
    if (!retain_graph) node->release();
    CW_CHECK(out.size() == node->next_edges.size() || node->next_edges.empty(), Error,
             "backward: ", node->name(), " returned ", out.size(), " gradients for ", node->next_edges.size(),
             " inputs");
    for (size_t k = 0; k < node->next_edges.size(); ++k) {
      const Edge& e = node->next_edges[k];
      if (!e.valid()) continue;
      CW_CHECK(out[k].defined(), Error, "backward: ", node->name(), " gave no gradient for input ", k);
      CW_CHECK(out[k].shape() == e.fn->outputs[e.input_nr].shape, ShapeError, "backward: ", node->name(),
               " gave a gradient of shape ", shape_str(out[k].shape()), " for input ", k, " of shape ",
               shape_str(e.fn->outputs[e.input_nr].shape), " (a backward rule is wrong)");
      auto& buf = buffers[e.fn.get()];
      buf.resize(e.fn->outputs.size());
      accumulate(buf[e.input_nr], out[k]);
      if (--pending[e.fn.get()] == 0) ready.push_back(e.fn);
    }
  }
}

}  // namespace cw
