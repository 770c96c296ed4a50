// Backward rules of the elementwise ops. Binary ops broadcast, so each input's gradient is
// summed back to that input's shape with ops::sum_to.
//   d(a+b) = (g, g)        d(a-b) = (g, -g)       d(a*b) = (g*b, g*a)
//   d(a/b) = (g/b, -g*a/b^2)
//   maximum/minimum: g goes to the selected input; on a tie it is split in half (as PyTorch).
//   where(c, a, b): g where c, else 0, and the reverse for b.
//   unary f: g * f'(x), the derivative kernel lives in the backend (ops::unary_backward).
#include "autograd/functions.h"

namespace cw::ag {
namespace {

Variable unary_op(UnaryOp op, const Variable& x, double scalar = 0.0) {
  Tensor y = ops::unary(op, x.data(), scalar);
  // Keep alive only what the derivative reads: the output for ops whose derivative is a function
  // of it (exp, tanh, sigmoid, the roots; relu's x > 0 is y > 0; neg reads nothing), the input
  // for the others. Keeping both would hold two activations per op until the backward.
  if (unary_grad_uses_output(op)) {
    return record(unary_op_name(op), y, {x}, [op, y, scalar](const Grads& g, const auto&) {
      return Grads{ops::unary_backward(op, y, y, g[0], scalar)};
    });
  }
  return record(unary_op_name(op), y, {x}, [op, xs = x.data(), scalar](const Grads& g, const auto&) {
    return Grads{ops::unary_backward(op, xs, Tensor(), g[0], scalar)};
  });
}

}  // namespace

Variable neg(const Variable& x) {
  return record("neg", ops::neg(x.data()), {x},
                [](const Grads& g, const auto&) { return Grads{ops::neg(g[0])}; });
}
Variable exp(const Variable& x) { return unary_op(UnaryOp::Exp, x); }
Variable log(const Variable& x) { return unary_op(UnaryOp::Log, x); }
Variable sqrt(const Variable& x) { return unary_op(UnaryOp::Sqrt, x); }
Variable rsqrt(const Variable& x) { return unary_op(UnaryOp::Rsqrt, x); }
Variable tanh(const Variable& x) { return unary_op(UnaryOp::Tanh, x); }
Variable sigmoid(const Variable& x) { return unary_op(UnaryOp::Sigmoid, x); }
Variable relu(const Variable& x) { return unary_op(UnaryOp::Relu, x); }
Variable gelu(const Variable& x, ops::GeluApprox approx) {
  return unary_op(approx == ops::GeluApprox::None ? UnaryOp::GeluErf : UnaryOp::GeluTanh, x);
}
Variable silu(const Variable& x) { return unary_op(UnaryOp::Silu, x); }
Variable abs(const Variable& x) { return unary_op(UnaryOp::Abs, x); }
Variable pow(const Variable& x, double exponent) { return unary_op(UnaryOp::Pow, x, exponent); }

Variable add(const Variable& a, const Variable& b) {
  return record(
      "add", ops::add(a.data(), b.data()), {a, b},
      [sa = a.shape(), sb = b.shape()](const Grads& g, const auto& need) {
        return Grads{need[0] ? ops::sum_to(g[0], sa) : Tensor(), need[1] ? ops::sum_to(g[0], sb) : Tensor()};
      });
}

Variable sub(const Variable& a, const Variable& b) {
  return record("sub", ops::sub(a.data(), b.data()), {a, b},
                [sa = a.shape(), sb = b.shape()](const Grads& g, const auto& need) {
                  return Grads{need[0] ? ops::sum_to(g[0], sa) : Tensor(),
                               need[1] ? ops::sum_to(ops::neg(g[0]), sb) : Tensor()};
                });
}

Variable mul(const Variable& a, const Variable& b) {
  return record("mul", ops::mul(a.data(), b.data()), {a, b},
                [ta = a.data(), tb = b.data()](const Grads& g, const auto& need) {
                  return Grads{need[0] ? ops::sum_to(ops::mul(g[0], tb), ta.shape()) : Tensor(),
                               need[1] ? ops::sum_to(ops::mul(g[0], ta), tb.shape()) : Tensor()};
                });
}

Variable div(const Variable& a, const Variable& b) {
  Tensor y = ops::div(a.data(), b.data());
  return record("div", y, {a, b}, [ta = a.data(), tb = b.data(), y](const Grads& g, const auto& need) {
    Tensor ga, gb;
    const Tensor gq = ops::div(g[0], tb);  // g / b
    if (need[0]) ga = ops::sum_to(gq, ta.shape());
    if (need[1]) gb = ops::sum_to(ops::neg(ops::mul(gq, y)), tb.shape());  // -g a / b^2 = -(g/b) y
    return Grads{ga, gb};
  });
}

namespace {
Variable select_binary(const char* name, bool is_max, const Variable& a, const Variable& b) {
  Tensor y = is_max ? ops::maximum(a.data(), b.data()) : ops::minimum(a.data(), b.data());
  return record(name, y, {a, b}, [ta = a.data(), tb = b.data(), is_max](const Grads& g, const auto& need) {
    // weight of a: 1 where a wins, 0.5 on a tie, 0 where b wins
    const Tensor wins = is_max ? ops::gt(ta, tb) : ops::lt(ta, tb);
    const Tensor wa = ops::add(wins, ops::mul(ops::eq(ta, tb), 0.5));
    Tensor ga, gb;
    if (need[0]) ga = ops::sum_to(ops::mul(g[0], wa), ta.shape());
    if (need[1]) gb = ops::sum_to(ops::mul(g[0], ops::sub(1.0, wa)), tb.shape());
    return Grads{ga, gb};
  });
}
}  // namespace
Variable maximum(const Variable& a, const Variable& b) { return select_binary("maximum", true, a, b); }
Variable minimum(const Variable& a, const Variable& b) { return select_binary("minimum", false, a, b); }

Variable add(const Variable& a, double s) {
  return record("add_scalar", ops::add(a.data(), s), {a},
                [](const Grads& g, const auto&) { return Grads{g[0]}; });
}
Variable sub(const Variable& a, double s) { return add(a, -s); }
Variable sub(double s, const Variable& a) {
  return record("rsub_scalar", ops::sub(s, a.data()), {a},
                [](const Grads& g, const auto&) { return Grads{ops::neg(g[0])}; });
}
Variable mul(const Variable& a, double s) {
  return record("mul_scalar", ops::mul(a.data(), s), {a},
                [s](const Grads& g, const auto&) { return Grads{ops::mul(g[0], s)}; });
}
Variable div(const Variable& a, double s) { return mul(a, 1.0 / s); }
Variable div(double s, const Variable& a) {
  Tensor y = ops::div(s, a.data());
  // d(s/a) = -s/a^2 = -y/a
  return record("rdiv_scalar", y, {a}, [y, ta = a.data()](const Grads& g, const auto&) {
    return Grads{ops::neg(ops::div(ops::mul(g[0], y), ta))};
  });
}

Variable where(const Tensor& cond, const Variable& a, const Variable& b) {
  return record("where", ops::where(cond, a.data(), b.data()), {a, b},
                [cond, sa = a.shape(), sb = b.shape()](const Grads& g, const auto& need) {
                  const Tensor zero = ops::zeros({}, g[0].dtype(), g[0].device());
                  Tensor ga, gb;
                  if (need[0]) ga = ops::sum_to(ops::where(cond, g[0], zero), sa);
                  if (need[1]) gb = ops::sum_to(ops::where(cond, zero, g[0]), sb);
                  return Grads{ga, gb};
                });
}

Variable masked_fill(const Variable& x, const Tensor& mask, double value) {
  return record("masked_fill", ops::masked_fill(x.data(), mask, value), {x},
                [mask](const Grads& g, const auto&) { return Grads{ops::masked_fill(g[0], mask, 0.0)}; });
}

}  // namespace cw::ag
