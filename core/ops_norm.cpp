// Softmax / log-softmax over any dim and layer norm over the trailing dims. The kernels work on
// contiguous rows of the last dim; another dim is moved last (one copy) and back.
#include "core/ops.h"

namespace cw::ops {
namespace {

// Runs fn on x with `dim` moved last and made contiguous, then moves the result's dim back.
template <class Fn>
Tensor along_last(const Tensor& x, int64_t dim, Fn fn) {
  const int64_t last = x.dim() - 1;
  if (dim == last || x.dim() <= 1) return fn(x.contiguous());
  return fn(x.transpose(dim, last).contiguous()).transpose(dim, last);
}

}  // namespace

static Tensor softmax_impl(const Tensor& x, int64_t dim, bool log, const char* name) {
  CW_CHECK(x.defined(), ValueError, name, ": undefined tensor");
  check_floating(x, name);
  dim = wrap_dim(dim, x.dim(), name);
  return along_last(x, dim, [&](const Tensor& xc) {
    Tensor out = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
    backend_for(x.device(), name).softmax(xc, out, log);
    return out;
  });
}

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false, "softmax"); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true, "log_softmax"); }

Tensor softmax_backward(const Tensor& y, const Tensor& gy, int64_t dim, bool log) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  CW_CHECK(y.shape() == gy.shape(), ShapeError, name, ": output ", shape_str(y.shape()), " and gradient ",
           shape_str(gy.shape()), " differ");
  check_same_dtype(y, gy, name);
  dim = wrap_dim(dim, y.dim(), name);
  const int64_t last = y.dim() - 1;
  const bool moved = dim != last && y.dim() > 1;
  const Tensor yc = (moved ? y.transpose(dim, last) : y).contiguous();
  const Tensor gc = (moved ? gy.transpose(dim, last) : gy).contiguous();
  Tensor gx = Tensor::empty(yc.shape(), y.dtype(), y.device());
  backend_for(y.device(), name).softmax_backward(yc, gc, gx, log);
  return moved ? gx.transpose(dim, last) : gx;
}

namespace {
// Splits x into (rows, cols) where cols covers the last n dims; checks weight/bias shapes.
std::pair<int64_t, int64_t> ln_geometry(const Tensor& x, int64_t n, const Tensor& weight,
                                        const Tensor& bias) {
  CW_CHECK(n >= 1 && n <= x.dim(), ShapeError, "layer_norm: normalized_ndim ", n, " is invalid for input ",
           shape_str(x.shape()));
  const Shape norm_shape(x.shape().end() - n, x.shape().end());
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    CW_CHECK(p->shape() == norm_shape, ShapeError, "layer_norm: ", p == &weight ? "weight" : "bias",
             " has shape ", shape_str(p->shape()), ", expected ", shape_str(norm_shape), " for input ",
             shape_str(x.shape()));
    check_same_dtype(x, *p, "layer_norm");
    check_same_device(x, *p, "layer_norm");
  }
  const int64_t cols = numel_of(norm_shape);
  return {cols == 0 ? 0 : x.numel() / cols, cols};
}
}  // namespace

LayerNormOutput layer_norm(const Tensor& x, int64_t normalized_ndim, const Tensor& weight, const Tensor& bias,
                           double eps) {
  CW_CHECK(x.defined(), ValueError, "layer_norm: undefined input");
  check_floating(x, "layer_norm");
  const auto [rows, cols] = ln_geometry(x, normalized_ndim, weight, bias);
  const Tensor xc = x.contiguous().view({rows, cols});
  LayerNormOutput o{Tensor::empty({rows, cols}, x.dtype(), x.device()),
                    Tensor::empty({rows}, x.dtype(), x.device()),
                    Tensor::empty({rows}, x.dtype(), x.device())};
  const Tensor w = weight.defined() ? weight.contiguous().view({cols}) : Tensor();
  const Tensor b = bias.defined() ? bias.contiguous().view({cols}) : Tensor();
  backend_for(x.device(), "layer_norm").layer_norm(xc, w, b, eps, o.y, o.mean, o.rstd);
  o.y = o.y.view(x.shape());
  return o;
}

LayerNormGrads layer_norm_backward(const Tensor& gy, const Tensor& x, int64_t normalized_ndim,
                                   const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                   bool need_weight_grad, bool need_bias_grad) {
  CW_CHECK(gy.shape() == x.shape(), ShapeError, "layer_norm_backward: gradient ", shape_str(gy.shape()),
           " does not match input ", shape_str(x.shape()));
  const auto [rows, cols] = ln_geometry(x, normalized_ndim, weight, Tensor());
  const Shape norm_shape(x.shape().end() - normalized_ndim, x.shape().end());
  LayerNormGrads g;
  g.x = Tensor::empty({rows, cols}, x.dtype(), x.device());
  if (need_weight_grad) g.weight = Tensor::empty({cols}, x.dtype(), x.device());
  if (need_bias_grad) g.bias = Tensor::empty({cols}, x.dtype(), x.device());
  const Tensor w = weight.defined() ? weight.contiguous().view({cols}) : Tensor();
  backend_for(x.device(), "layer_norm_backward")
      .layer_norm_backward(gy.contiguous().view({rows, cols}), x.contiguous().view({rows, cols}), mean, rstd,
                           w, g.x, g.weight, g.bias);
  g.x = g.x.view(x.shape());
  if (g.weight.defined()) g.weight = g.weight.view(norm_shape);
  if (g.bias.defined()) g.bias = g.bias.view(norm_shape);
  return g;
}

}  // namespace cw::ops
