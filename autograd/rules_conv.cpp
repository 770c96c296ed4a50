// Backward rules of dropout and the convolutions.
//   dropout: y = x * keep / (1 - p)  =>  dx = g * keep / (1 - p), from the keep bits the forward
//            kept (1 bit per element: 1/32 of an f32 activation; drawing them again cost the
//            backward as much as the forward's draw)
//   conv1d / conv2d: the backward kernels derived in core/ops_conv.cpp.
#include "autograd/functions.h"

namespace cw::ag {

Variable dropout(const Variable& x, double p, bool training, Generator& gen) {
  if (!training || p == 0.0) return x;
  ops::DropoutResult r = ops::dropout(x.data(), p, gen);
  return record("dropout", r.y, {x}, [mask = r.mask, p](const Grads& g, const auto&) {
    return Grads{ops::dropout_backward(g[0], mask, p)};
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
