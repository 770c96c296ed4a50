// glu (see activations.h) as one autograd node. Composed of split, sigmoid and mul it would keep
// sigmoid(b) (half the input's size) on top of x for backward; this node keeps only x, and
// recomputes sigmoid(b) in backward, as PyTorch's native glu does. With s = sigmoid(b) and
// upstream gradient g:
//   da = g * s,   db = g * a * s * (1 - s)
// Part of nn/.
#include "nn/activations.h"

namespace cw::nn {

Variable glu(const Variable& x, int64_t dim) {
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  CW_CHECK(d >= 0 && d < x.dim() && x.size(d) % 2 == 0, ShapeError, "glu: dim ", dim, " of input ",
           shape_str(x.shape()), " must exist and have an even size");
  const int64_t half = x.size(d) / 2;
  const Tensor& xs = x.data();
  const Tensor y = ops::mul(xs.narrow(d, 0, half), ops::sigmoid(xs.narrow(d, half, half)));
  return ag::record("glu", y, {x}, [xs, d, half](const Grads& g, const std::vector<bool>&) {
    const Tensor a = xs.narrow(d, 0, half);
    const Tensor s = ops::sigmoid(xs.narrow(d, half, half));
    const Tensor ga = ops::mul(g[0], s);
    // g * a * s * (1 - s) = ga * a * (1 - s)
    const Tensor gb = ops::mul(ops::mul(ga, a), ops::sub(1.0, s));
    return Grads{ops::concat({ga, gb}, d)};
  });
}

}  // namespace cw::nn
