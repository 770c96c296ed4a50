// Backward rules of indexing, joining and splitting:
//   index_select / embedding: dx = index_add(zeros, dim, index, g)   (repeated ids accumulate)
//   gather:                   dx = scatter_add(zeros, dim, index, g)
//   concat:                   dx_i = the slice of g that x_i filled
//   split:                    dx = concat of the pieces' gradients (zeros for unused pieces)
#include "autograd/functions.h"

namespace cw::ag {

Variable index_select(const Variable& x, int64_t dim, const Tensor& index) {
  return record("index_select", ops::index_select(x.data(), dim, index), {x},
                [xs = x.data(), dim, index](const Grads& g, const auto&) {
                  return Grads{ops::index_add(ops::zeros_like(xs), dim, index, g[0])};
                });
}

Variable embedding(const Variable& weight, const Tensor& ids) {
  // The gradient w.r.t. the table is dense here; a sparse update is a later optimization.
  return record("embedding", ops::embedding(weight.data(), ids), {weight},
                [w = weight.data(), ids](const Grads& g, const auto&) {
                  const Tensor flat = g[0].reshape({-1, w.size(1)});
                  return Grads{ops::index_add(ops::zeros_like(w), 0, ids.reshape({-1}), flat)};
                });
}

Variable gather(const Variable& x, int64_t dim, const Tensor& index) {
  return record("gather", ops::gather(x.data(), dim, index), {x},
                [xs = x.data(), dim, index](const Grads& g, const auto&) {
                  return Grads{ops::scatter_add(ops::zeros_like(xs), dim, index, g[0])};
                });
}

Variable concat(const std::vector<Variable>& xs, int64_t dim) {
  std::vector<Tensor> ts;
  std::vector<int64_t> sizes;
  for (const Variable& v : xs) ts.push_back(v.data());
  Tensor y = ops::concat(ts, dim);
  dim = wrap_dim(dim, y.dim(), "concat");
  for (const Tensor& t : ts) sizes.push_back(t.size(dim));
  return record("concat", y, xs, [sizes, dim](const Grads& g, const auto& need) {
    Grads out;
    int64_t at = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      out.push_back(need[i] ? g[0].narrow(dim, at, sizes[i]).contiguous() : Tensor());
      at += sizes[i];
    }
    return out;
  });
}

Variable stack(const std::vector<Variable>& xs, int64_t dim) {
  CW_CHECK(!xs.empty(), ValueError, "stack: no tensors given");
  dim = wrap_dim(dim, xs.front().dim() + 1, "stack");
  std::vector<Variable> us;
  for (const Variable& v : xs) us.push_back(unsqueeze(v, dim));
  return concat(us, dim);
}

std::vector<Variable> split(const Variable& x, const std::vector<int64_t>& sizes, int64_t dim) {
  std::vector<Tensor> parts = ops::split(x.data(), sizes, dim);
  dim = wrap_dim(dim, x.dim(), "split");
  return record("split", parts, {x}, [dim](const Grads& g, const auto&) {
    // Every output has a gradient here: the engine fills zeros for unused pieces.
    return Grads{ops::concat(g, dim)};
  });
}

std::vector<Variable> split(const Variable& x, int64_t size, int64_t dim) {
  CW_CHECK(size > 0, ValueError, "split: size must be positive, got ", size);
  const int64_t n = x.size(dim);
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < n; at += size) sizes.push_back(std::min(size, n - at));
  return split(x, sizes, dim);
}

}  // namespace cw::ag
