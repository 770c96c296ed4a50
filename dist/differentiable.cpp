// Differentiable all-gather and all-reduce (see differentiable.h).
#include "dist/differentiable.h"

#include "autograd/functions.h"

namespace cw::dist {

Variable all_gather_rows(Communicator& comm, const Variable& local, const std::vector<int64_t>& counts) {
  Tensor gathered = comm.all_gather_rows(local.data(), counts);
  return ag::record("all_gather_rows", gathered, {local},
                    [&comm, counts](const Grads& g, const std::vector<bool>&) {
                      return Grads{comm.reduce_scatter_rows(g[0], counts)};
                    });
}

Variable all_reduce_sum(Communicator& comm, const Variable& x) {
  Tensor sum = x.data().clone();
  comm.all_reduce(sum, ReduceOp::Sum);
  return ag::record("all_reduce_sum", sum, {x}, [&comm](const Grads& g, const std::vector<bool>&) {
    Tensor s = g[0].clone();
    comm.all_reduce(s, ReduceOp::Sum);
    return Grads{s};
  });
}

}  // namespace cw::dist
