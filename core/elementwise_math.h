// The scalar functions of the elementwise ops: y = f(x), f'(x) and the binary ops, in the element
// type (expf for f32, exp for f64, ...), written once for both backends (CW_HD): the CUDA kernels
// (cuda/elementwise.cu) and the CPU backend's scalar loops (core/cpu/cpu_elementwise.cpp, whose
// contiguous rows of the transcendental ops go through Eigen's vectorized versions of the same
// formulas). Part of core/.
//
// Derivatives, given y = f(x) where that is cheaper (the textbook ones):
//   tanh' = 1 - y^2, sigmoid' = y (1 - y), rsqrt' = -y^3 / 2, sqrt' = 1 / (2 y),
//   gelu'  = Phi(x) + x phi(x)                       (Phi, phi: normal cdf and pdf)
//   gelu_tanh' = (1 + t)/2 + x (1 - t^2) k (1 + 3 c x^2) / 2,  t = tanh(k (x + c x^3))
//   silu'  = s (1 + x (1 - s)),  s = sigmoid(x)
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/backend.h"
#include "core/host_device.h"

namespace cw {

constexpr double kSqrt1_2 = 0.70710678118654752440;      // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1/sqrt(2*pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2/pi)
constexpr double kGeluC = 0.044715;

// Precision-matched math: the float overloads (expf, ...) for f32, double ones for f64.
template <class T>
CW_HD T dexp(T x) {
  if constexpr (sizeof(T) == 4)
    return expf(x);
  else
    return exp(x);
}
template <class T>
CW_HD T dlog(T x) {
  if constexpr (sizeof(T) == 4)
    return logf(x);
  else
    return log(x);
}
template <class T>
CW_HD T dsqrt(T x) {
  if constexpr (sizeof(T) == 4)
    return sqrtf(x);
  else
    return sqrt(x);
}
template <class T>
CW_HD T dtanh(T x) {
  if constexpr (sizeof(T) == 4)
    return tanhf(x);
  else
    return tanh(x);
}
template <class T>
CW_HD T derf(T x) {
  if constexpr (sizeof(T) == 4)
    return erff(x);
  else
    return erf(x);
}
template <class T>
CW_HD T dpow(T x, T p) {
  if constexpr (sizeof(T) == 4)
    return powf(x, p);
  else
    return pow(x, p);
}

template <class T>
CW_HD T unary_fn(UnaryOp op, T x, double p) {
  if constexpr (std::is_integral_v<T>) {
    // ops_elementwise.cpp lets only neg and abs reach integer tensors.
    return op == UnaryOp::Neg ? -x : (x < 0 ? -x : x);
  } else {
    switch (op) {
      case UnaryOp::Neg: return -x;
      case UnaryOp::Exp: return dexp(x);
      case UnaryOp::Log: return dlog(x);
      case UnaryOp::Sqrt: return dsqrt(x);
      case UnaryOp::Rsqrt: return T(1) / dsqrt(x);
      case UnaryOp::Tanh: return dtanh(x);
      case UnaryOp::Sigmoid: return T(1) / (T(1) + dexp(-x));
      case UnaryOp::Relu: return x > T(0) ? x : T(0);
      case UnaryOp::GeluErf: return T(0.5) * x * (T(1) + derf(x * T(kSqrt1_2)));
      case UnaryOp::GeluTanh:
        return T(0.5) * x * (T(1) + dtanh(T(kSqrt2OverPi) * (x + T(kGeluC) * x * x * x)));
      case UnaryOp::Silu: return x / (T(1) + dexp(-x));
      case UnaryOp::Abs: return x < T(0) ? -x : x;
      case UnaryOp::Pow: return dpow(x, static_cast<T>(p));
    }
    return x;
  }
}

// dy/dx given x and y = f(x) (derivations at the top of this file).
template <class T>
CW_HD T unary_grad(UnaryOp op, T x, T y, double p) {
  switch (op) {
    case UnaryOp::Neg: return T(-1);
    case UnaryOp::Exp: return y;
    case UnaryOp::Log: return T(1) / x;
    case UnaryOp::Sqrt: return T(0.5) / y;
    case UnaryOp::Rsqrt: return T(-0.5) * y * y * y;
    case UnaryOp::Tanh: return T(1) - y * y;
    case UnaryOp::Sigmoid: return y * (T(1) - y);
    case UnaryOp::Relu: return x > T(0) ? T(1) : T(0);
    case UnaryOp::GeluErf:
      return T(0.5) * (T(1) + derf(x * T(kSqrt1_2))) + x * T(kInvSqrt2Pi) * dexp(T(-0.5) * x * x);
    case UnaryOp::GeluTanh: {
      const T t = dtanh(T(kSqrt2OverPi) * (x + T(kGeluC) * x * x * x));
      return T(0.5) * (T(1) + t) +
             T(0.5) * x * (T(1) - t * t) * T(kSqrt2OverPi) * (T(1) + T(3 * kGeluC) * x * x);
    }
    case UnaryOp::Silu: {
      const T s = T(1) / (T(1) + dexp(-x));
      return s * (T(1) + x * (T(1) - s));
    }
    case UnaryOp::Abs: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case UnaryOp::Pow: return static_cast<T>(p) * dpow(x, static_cast<T>(p - 1));
  }
  return T(0);
}

template <class T>
CW_HD T binary_fn(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Maximum: return a > b ? a : b;
    case BinaryOp::Minimum: return a < b ? a : b;
    case BinaryOp::Eq: return T(a == b);
    case BinaryOp::Ne: return T(a != b);
    case BinaryOp::Lt: return T(a < b);
    case BinaryOp::Le: return T(a <= b);
    case BinaryOp::Gt: return T(a > b);
    case BinaryOp::Ge: return T(a >= b);
  }
  return a;
}

}  // namespace cw
