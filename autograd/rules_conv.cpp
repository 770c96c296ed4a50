// Backward rules of dropout and the convolutions.
//   dropout: y = x * mask  =>  dx = g * mask (the mask already holds 1/(1-p) for kept units)
//   conv1d / conv2d: the backward kernels derived in core/ops_conv.cpp.
#include "autograd/functions.h"

namespace cw::ag {

Variable dropout(const Variable& x, double p, bool training, Generator& gen) {
  if (!training || p == 0.0) return x;
  const Tensor mask = ops::dropout_mask(x.shape(), p, x.dtype(), gen);
  return record("dropout", ops::mul(x.data(), mask), {x},
                [mask](const Grads& g, const auto&) { return Grads{ops::mul(g[0], mask)}; });
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
