// The backward engine: runs the graph behind some roots in reverse topological order, summing
// gradients for values used more than once. Iterative (Kahn's algorithm over dependency
// counts), so a chain of any length runs in constant stack depth. Part of autograd/.
#pragma once

#include <vector>

#include "autograd/variable.h"

namespace cw {

// Backpropagates grads[i] from roots[i]. An undefined grad is taken as 1 for a one-element
// root and is an error otherwise.
void run_backward(const std::vector<Variable>& roots, const std::vector<Tensor>& grads, bool retain_graph);

}  // namespace cw
