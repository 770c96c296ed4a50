// Elementwise ops: argument checks, broadcasting and dispatch for unary, binary and where.
#include "core/ops.h"

namespace cw::ops {

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  CW_CHECK(a.device() == b.device(), DeviceError, op, ": operands are on different devices (", describe(a),
           " and ", describe(b), "); move one with .to()");
}
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  CW_CHECK(a.dtype() == b.dtype(), DTypeError, op, ": dtypes differ (", describe(a), " and ", describe(b),
           "); convert one with .to(dtype)");
}
void check_floating(const Tensor& a, const char* op) {
  CW_CHECK(is_floating(a.dtype()), DTypeError, op, ": expects a floating tensor, got ", describe(a));
}

namespace {
void check_defined(const Tensor& t, const char* op) {
  CW_CHECK(t.defined(), ValueError, op, ": an operand is an undefined tensor");
}
}  // namespace

Tensor unary(UnaryOp op, const Tensor& x, double scalar) {
  const char* name = unary_op_name(op);
  check_defined(x, name);
  // neg and abs also make sense on ids; the rest are floating-point functions.
  if (op != UnaryOp::Neg && op != UnaryOp::Abs) check_floating(x, name);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_for(x.device(), name).unary(op, x, out, scalar);
  return out;
}

Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, double scalar) {
  const char* name = unary_op_name(op);
  CW_CHECK(gy.shape() == x.shape(), ShapeError, name, "_backward: gradient ", shape_str(gy.shape()),
           " does not match input ", shape_str(x.shape()));
  check_same_dtype(x, gy, name);
  Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_for(x.device(), name).unary_backward(op, x, y, gy, gx, scalar);
  return gx;
}

Tensor neg(const Tensor& x) { return unary(UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::Log, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::Rsqrt, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::Relu, x); }
Tensor gelu(const Tensor& x, GeluApprox approx) {
  return unary(approx == GeluApprox::None ? UnaryOp::GeluErf : UnaryOp::GeluTanh, x);
}
Tensor silu(const Tensor& x) { return unary(UnaryOp::Silu, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::Abs, x); }
Tensor pow(const Tensor& x, double exponent) { return unary(UnaryOp::Pow, x, exponent); }

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  check_defined(a, name);
  check_defined(b, name);
  check_same_device(a, b, name);
  check_same_dtype(a, b, name);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  backend_for(a.device(), name).binary(op, a.expand(shape), b.expand(shape), out);
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Minimum, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Ge, a, b); }

// A scalar operand is a 0-d tensor of the other operand's dtype; broadcasting reads it with
// stride 0, so no buffer of x's size is made.
namespace {
Tensor like_scalar(const Tensor& x, double s) {
  CW_CHECK(x.defined(), ValueError, "scalar op: undefined tensor");
  return scalar(s, x.dtype(), x.device());
}
}  // namespace
Tensor add(const Tensor& a, double s) { return add(a, like_scalar(a, s)); }
Tensor sub(const Tensor& a, double s) { return sub(a, like_scalar(a, s)); }
Tensor sub(double s, const Tensor& a) { return sub(like_scalar(a, s), a); }
Tensor mul(const Tensor& a, double s) { return mul(a, like_scalar(a, s)); }
Tensor div(const Tensor& a, double s) { return div(a, like_scalar(a, s)); }
Tensor div(double s, const Tensor& a) { return div(like_scalar(a, s), a); }
Tensor maximum(const Tensor& a, double s) { return maximum(a, like_scalar(a, s)); }
Tensor minimum(const Tensor& a, double s) { return minimum(a, like_scalar(a, s)); }
Tensor gt(const Tensor& a, double s) { return gt(a, like_scalar(a, s)); }
Tensor lt(const Tensor& a, double s) { return lt(a, like_scalar(a, s)); }
Tensor eq(const Tensor& a, double s) { return eq(a, like_scalar(a, s)); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined(cond, "where");
  check_defined(a, "where");
  check_defined(b, "where");
  check_same_device(cond, a, "where");
  check_same_device(a, b, "where");
  check_same_dtype(a, b, "where");
  const Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  backend_for(a.device(), "where").where(cond.expand(shape), a.expand(shape), b.expand(shape), out);
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined(x, "masked_fill");
  check_defined(mask, "masked_fill");
  const Shape shape = broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  CW_CHECK(shape == x.shape(), ShapeError, "masked_fill: mask ", shape_str(mask.shape()),
           " must broadcast to the input ", shape_str(x.shape()));
  return where(mask, like_scalar(x, value), x);
}

}  // namespace cw::ops
