// Backward rules of the views. A view moves elements without changing them, so its gradient
// moves them back: reshape -> reshape to the input shape, transpose/permute -> the inverse
// permutation, expand -> sum_to, and narrow/slice/select -> the gradient written into a zero
// tensor of the input's shape at the same place.
#include "autograd/functions.h"

namespace cw::ag {
namespace {

// A rule that reshapes the gradient back to the input shape (reshape, squeeze, unsqueeze...).
Variable reshaping(const char* name, const Variable& x, Tensor y) {
  return record(name, std::move(y), {x},
                [s = x.shape()](const Grads& g, const auto&) { return Grads{g[0].reshape(s)}; });
}

// A rule that scatters the gradient into zeros at the view's position: `place` recreates the
// same view on the zero tensor.
template <class Place>
Variable sub_view(const char* name, const Variable& x, Tensor y, Place place) {
  return record(name, std::move(y), {x}, [xs = x.data(), place](const Grads& g, const auto&) {
    Tensor gx = ops::zeros_like(xs);
    place(gx).copy_(g[0]);
    return Grads{gx};
  });
}

}  // namespace

Variable reshape(const Variable& x, const Shape& shape) {
  return reshaping("reshape", x, x.data().reshape(shape));
}
Variable squeeze(const Variable& x, int64_t dim) { return reshaping("squeeze", x, x.data().squeeze(dim)); }
Variable unsqueeze(const Variable& x, int64_t dim) {
  return reshaping("unsqueeze", x, x.data().unsqueeze(dim));
}
Variable flatten(const Variable& x, int64_t s, int64_t e) {
  return reshaping("flatten", x, x.data().flatten(s, e));
}
Variable contiguous(const Variable& x) {
  if (x.data().is_contiguous()) return x;
  return reshaping("contiguous", x, x.data().contiguous());
}

Variable transpose(const Variable& x, int64_t d0, int64_t d1) {
  return record("transpose", x.data().transpose(d0, d1), {x},
                [d0, d1](const Grads& g, const auto&) { return Grads{g[0].transpose(d0, d1)}; });
}

Variable permute(const Variable& x, const std::vector<int64_t>& dims) {
  Tensor y = x.data().permute(dims);
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i)
    inverse[wrap_dim(dims[i], x.dim(), "permute")] = static_cast<int64_t>(i);
  return record("permute", y, {x},
                [inverse](const Grads& g, const auto&) { return Grads{g[0].permute(inverse)}; });
}

Variable expand(const Variable& x, const Shape& shape) {
  return record("expand", x.data().expand(shape), {x},
                [s = x.shape()](const Grads& g, const auto&) { return Grads{ops::sum_to(g[0], s)}; });
}

Variable narrow(const Variable& x, int64_t dim, int64_t start, int64_t length) {
  return sub_view("narrow", x, x.data().narrow(dim, start, length),
                  [=](const Tensor& t) { return t.narrow(dim, start, length); });
}

Variable slice(const Variable& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  return sub_view("slice", x, x.data().slice(dim, start, end, step),
                  [=](const Tensor& t) { return t.slice(dim, start, end, step); });
}

Variable select(const Variable& x, int64_t dim, int64_t index) {
  return sub_view("select", x, x.data().select(dim, index),
                  [=](const Tensor& t) { return t.select(dim, index); });
}

}  // namespace cw::ag
