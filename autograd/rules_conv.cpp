// Backward rules of dropout and the convolutions.
//   dropout: y = x * mask  =>  dx = g * mask (the mask already holds 1/(1-p) for kept units;
//            it is redrawn from the saved generator state, not stored)
//   conv1d / conv2d: the backward kernels derived in core/ops_conv.cpp.
#include "autograd/functions.h"

namespace cw::ag {

Variable dropout(const Variable& x, double p, bool training, Generator& gen) {
  if (!training || p == 0.0) return x;
  // The mask is a pure function of the generator state (counter-based Philox), so the backward
  // redraws it from a copy of that state instead of keeping a mask as large as x alive.
  const Generator at = gen;
  const Tensor y = ops::mul(x.data(), ops::dropout_mask(x.shape(), p, x.dtype(), gen, x.device()));
  return record("dropout", y, {x}, [at, p](const Grads& g, const auto&) {
    Generator redraw = at;
    return Grads{ops::mul(g[0], ops::dropout_mask(g[0].shape(), p, g[0].dtype(), redraw, g[0].device()))};
  });
}

Variable conv2d(const Variable& x, const Variable& weight, const Variable& bias,
                const ops::Conv2dOptions& o) {
  const Tensor b = bias.defined() ? bias.data() : Tensor();
  return record("conv2d", ops::conv2d(x.data(), weight.data(), b, o), {x, weight, bias},
                [xs = x.data(), w = weight.data(), o](const Grads& g, const auto& need) {
                  ops::ConvGrads r = ops::conv2d_backward(g[0], xs, w, o, need[0], need[1], need[2]);
                  return Grads{r.x, r.weight, r.bias};
                });
}

Variable conv1d(const Variable& x, const Variable& weight, const Variable& bias,
                const ops::Conv1dOptions& o) {
  const Tensor b = bias.defined() ? bias.data() : Tensor();
  return record("conv1d", ops::conv1d(x.data(), weight.data(), b, o), {x, weight, bias},
                [xs = x.data(), w = weight.data(), o](const Grads& g, const auto& need) {
                  ops::ConvGrads r = ops::conv1d_backward(g[0], xs, w, o, need[0], need[1], need[2]);
                  return Grads{r.x, r.weight, r.bias};
                });
}

}  // namespace cw::ag
