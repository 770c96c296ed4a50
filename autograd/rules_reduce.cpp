// Backward rules of the reductions. The incoming gradient has the reduced shape; it is first
// re-expanded to the input's shape (unsqueezing reduced dims when keepdim was false):
//   sum:  dx = expand(g)
//   mean: dx = expand(g) / n
//   amax/amin: dx = expand(g) * [x == y] / (number of ties)   (ties share the gradient)
//   var:  dx = expand(g) * 2 (x - mean) / (n - correction)
#include "autograd/functions.h"

namespace cw::ag {
namespace {

// g (reduced shape) -> a broadcastable view with the reduced dims as size 1.
Tensor unreduce(const Tensor& g, const Shape& in_shape, const std::vector<int64_t>& dims, bool keepdim) {
  if (keepdim) return g;
  Shape s = in_shape;
  for (int64_t d : dims) s[d] = 1;
  return g.reshape(s);
}

int64_t count(const Shape& s, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= s[d];
  return n;
}

}  // namespace

Variable sum(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  const auto nd = normalize_dims(dims, x.dim(), "sum");
  return record("sum", ops::sum(x.data(), nd, keepdim), {x},
                [s = x.shape(), nd, keepdim](const Grads& g, const auto&) {
                  return Grads{unreduce(g[0], s, nd, keepdim).expand(s).contiguous()};
                });
}

Variable mean(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  const auto nd = normalize_dims(dims, x.dim(), "mean");
  return record("mean", ops::mean(x.data(), nd, keepdim), {x},
                [s = x.shape(), nd, keepdim](const Grads& g, const auto&) {
                  const double n = static_cast<double>(count(s, nd));
                  return Grads{ops::div(unreduce(g[0], s, nd, keepdim), n).expand(s).contiguous()};
                });
}

namespace {
Variable extremum(const char* name, bool is_max, const Variable& x, const std::vector<int64_t>& dims,
                  bool keepdim) {
  const auto nd = normalize_dims(dims, x.dim(), name);
  Tensor y = is_max ? ops::amax(x.data(), nd, keepdim) : ops::amin(x.data(), nd, keepdim);
  return record(name, y, {x}, [xs = x.data(), y, nd, keepdim](const Grads& g, const auto&) {
    const Tensor yk = unreduce(y, xs.shape(), nd, keepdim);
    const Tensor hit = ops::eq(xs, yk);           // 1 at every maximum
    const Tensor ties = ops::sum(hit, nd, true);  // how many share it
    return Grads{ops::mul(hit, ops::div(unreduce(g[0], xs.shape(), nd, keepdim), ties))};
  });
}
}  // namespace
Variable amax(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum("amax", true, x, dims, keepdim);
}
Variable amin(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum("amin", false, x, dims, keepdim);
}

Variable var(const Variable& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  const auto nd = normalize_dims(dims, x.dim(), "var");
  return record("var", ops::var(x.data(), nd, correction, keepdim), {x},
                [xs = x.data(), nd, correction, keepdim](const Grads& g, const auto&) {
                  const double n = static_cast<double>(count(xs.shape(), nd));
                  const Tensor centered = ops::sub(xs, ops::mean(xs, nd, true));
                  const Tensor scale =
                      ops::mul(unreduce(g[0], xs.shape(), nd, keepdim), 2.0 / (n - correction));
                  return Grads{ops::mul(centered, scale)};
                });
}

}  // namespace cw::ag
