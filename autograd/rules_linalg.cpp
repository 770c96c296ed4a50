// Backward rules of matmul, softmax / log-softmax and layer norm.
//   y = a @ b:  da = g @ b^T,  db = a^T @ g  (summed over broadcast batch dims; a (..., M, K)
//   times a 2-d b folds the batch into M, so db is one GEMM (K, rows) @ (rows, N)).
//   y = x @ w^T + b (linear), x folded to (R, K):  dx = g @ w,  dw = g^T @ x (N, R) @ (R, K),
//   db = sum of g's rows.
//   softmax and layer norm call their fused backward kernels (derivations in core/cpu/cpu_norm.cpp).
#include "autograd/functions.h"

namespace cw::ag {

Variable matmul(const Variable& a, const Variable& b) {
  return record("matmul", ops::matmul(a.data(), b.data()), {a, b},
                [ta = a.data(), tb = b.data()](const Grads& grads, const auto& need) {
                  // Promote 1-d operands as the forward did, so the rules below are the 2-d ones.
                  const Tensor A = ta.dim() == 1 ? ta.unsqueeze(0) : ta;
                  const Tensor B = tb.dim() == 1 ? tb.unsqueeze(1) : tb;
                  Shape promoted = broadcast_shapes(Shape(A.shape().begin(), A.shape().end() - 2),
                                                    Shape(B.shape().begin(), B.shape().end() - 2), "matmul");
                  promoted.insert(promoted.end(), {A.size(-2), B.size(-1)});
                  const Tensor g = grads[0].reshape(promoted);
                  Tensor ga, gb;
                  if (need[0])
                    ga = ops::sum_to(ops::matmul(g, B.transpose(-1, -2)), A.shape()).reshape(ta.shape());
                  if (need[1]) {
                    if (B.dim() == 2 && A.dim() > 2) {
                      const int64_t K = A.size(-1), N = B.size(-1);
                      gb = ops::matmul(A.reshape({-1, K}).t(), g.reshape({-1, N}));
                    } else {
                      gb = ops::sum_to(ops::matmul(A.transpose(-1, -2), g), B.shape());
                    }
                    gb = gb.reshape(tb.shape());
                  }
                  return Grads{ga, gb};
                });
}

Variable linear(const Variable& x, const Variable& weight, const Variable& bias) {
  const Tensor b = bias.defined() ? bias.data() : Tensor();
  return record("linear", ops::linear(x.data(), weight.data(), b), {x, weight, bias},
                [xs = x.data(), w = weight.data()](const Grads& grads, const auto& need) {
                  const int64_t K = w.size(1), N = w.size(0);
                  const Tensor g = grads[0].reshape({-1, N});  // (R, N)
                  Tensor gx, gw, gb;
                  if (need[0]) gx = ops::matmul(g, w).reshape(xs.shape());
                  if (need[1]) gw = ops::matmul(g.t(), xs.reshape({-1, K}));
                  if (need[2]) gb = ops::sum(g, {0});
                  return Grads{gx, gw, gb};
                });
}

Variable softmax(const Variable& x, int64_t dim) {
  Tensor y = ops::softmax(x.data(), dim);
  return record("softmax", y, {x}, [y, dim](const Grads& g, const auto&) {
    return Grads{ops::softmax_backward(y, g[0], dim, false)};
  });
}

Variable log_softmax(const Variable& x, int64_t dim) {
  Tensor y = ops::log_softmax(x.data(), dim);
  return record("log_softmax", y, {x}, [y, dim](const Grads& g, const auto&) {
    return Grads{ops::softmax_backward(y, g[0], dim, true)};
  });
}

Variable layer_norm(const Variable& x, int64_t normalized_ndim, const Variable& weight, const Variable& bias,
                    double eps) {
  const Tensor w = weight.defined() ? weight.data() : Tensor();
  const Tensor b = bias.defined() ? bias.data() : Tensor();
  ops::LayerNormOutput o = ops::layer_norm(x.data(), normalized_ndim, w, b, eps);
  return record(
      "layer_norm", o.y, {x, weight, bias},
      [xs = x.data(), w, mean = o.mean, rstd = o.rstd, normalized_ndim](const Grads& g, const auto& need) {
        ops::LayerNormGrads r =
            ops::layer_norm_backward(g[0], xs, normalized_ndim, mean, rstd, w, need[1], need[2]);
        return Grads{need[0] ? r.x : Tensor(), r.weight, r.bias};
      });
}

}  // namespace cw::ag
