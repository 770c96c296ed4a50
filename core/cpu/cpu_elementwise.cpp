// CPU elementwise kernels: unary functions and their derivatives, broadcasting binary ops, and
// where. The scalar functions are core/elementwise_math.h's, shared with the CUDA backend; each
// binary op is fixed at compile time inside its loop, and the row loops are specialized for the
// common layouts (all contiguous, or one operand a broadcast scalar) so the compiler vectorizes
// them.
// Transcendental functions on contiguous rows go through Eigen's SIMD implementations (exp,
// log, tanh, erf, logistic): libm's scalar erf alone was 14% of a MiniLM forward pass.
#include <Eigen/Core>
#include <cmath>
#include <unsupported/Eigen/SpecialFunctions>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/strided_loop.h"
#include "core/elementwise_math.h"

namespace cw::cpu {
namespace {

// Applies f to every (output, operand...) element; f gets the row pointers and the index.
template <class T, size_t N, class F>
void rows_apply(const Shape& shape, const std::array<Strides, N>& strides, std::array<T*, N> ptrs, F f) {
  for_each_row<N>(shape, strides, [&](auto base, int64_t n, auto step) {
    std::array<T*, N> p;
    for (size_t k = 0; k < N; ++k) p[k] = ptrs[k] + base[k];
    f(p, n, step);
  });
}

template <class T, class F>
void binary_loop(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  T* o = out.data<T>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  for_each_row<3>(out.shape(), {out.strides(), a.strides(), b.strides()}, [&](auto base, int64_t n, auto s) {
    T* y = o + base[0];
    const T* x1 = pa + base[1];
    const T* x2 = pb + base[2];
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
      for (int64_t k = 0; k < n; ++k) y[k] = f(x1[k], x2[k]);
    } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {
      const T v = *x2;
      for (int64_t k = 0; k < n; ++k) y[k] = f(x1[k], v);
    } else if (s[0] == 1 && s[1] == 0 && s[2] == 1) {
      const T v = *x1;
      for (int64_t k = 0; k < n; ++k) y[k] = f(v, x2[k]);
    } else {
      for (int64_t k = 0; k < n; ++k) y[k * s[0]] = f(x1[k * s[1]], x2[k * s[2]]);
    }
  });
}

template <class T>
using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// y = op(x) on a contiguous row with Eigen's packet math; false when op has no such path.
template <class T>
bool unary_simd(UnaryOp op, const T* xp, T* yp, int64_t n) {
  if constexpr (!std::is_floating_point_v<T>) {
    return false;
  } else {
    const ConstArrayMap<T> x(xp, n);
    ArrayMap<T> y(yp, n);
    switch (op) {
      case UnaryOp::Exp: y = x.exp(); return true;
      case UnaryOp::Log: y = x.log(); return true;
      case UnaryOp::Sqrt: y = x.sqrt(); return true;
      case UnaryOp::Rsqrt: y = x.rsqrt(); return true;
      case UnaryOp::Tanh: y = x.tanh(); return true;
      case UnaryOp::Sigmoid: y = x.logistic(); return true;
      case UnaryOp::Silu: y = x * x.logistic(); return true;
      case UnaryOp::GeluErf: y = T(0.5) * x * (T(1) + (x * T(kSqrt1_2)).erf()); return true;
      case UnaryOp::GeluTanh:
        y = T(0.5) * x * (T(1) + (T(kSqrt2OverPi) * (x + T(kGeluC) * x.cube())).tanh());
        return true;
      default: return false;
    }
  }
}

// gx = gy * op'(x) on contiguous rows, for the activations that dominate training time.
template <class T>
bool unary_grad_simd(UnaryOp op, const T* xp, const T* yp, const T* gp, T* outp, int64_t n) {
  const ConstArrayMap<T> x(xp, n), y(yp, n), g(gp, n);
  ArrayMap<T> gx(outp, n);
  switch (op) {
    // Relu keeps only its output (x is y here): the gradient passes where y > 0 and is exactly 0
    // elsewhere (a select, as PyTorch's threshold_backward; the scalar loop cost 2.2x that op).
    case UnaryOp::Relu: gx = (x > T(0)).select(g, T(0)); return true;
    case UnaryOp::Exp: gx = g * y; return true;
    case UnaryOp::Tanh: gx = g * (T(1) - y.square()); return true;
    case UnaryOp::Sigmoid: gx = g * y * (T(1) - y); return true;
    case UnaryOp::Silu: {
      const auto sg = x.logistic();
      gx = g * sg * (T(1) + x * (T(1) - sg));
      return true;
    }
    case UnaryOp::GeluErf:
      gx =
          g * (T(0.5) * (T(1) + (x * T(kSqrt1_2)).erf()) + x * T(kInvSqrt2Pi) * (T(-0.5) * x.square()).exp());
      return true;
    case UnaryOp::GeluTanh: {
      const auto t = (T(kSqrt2OverPi) * (x + T(kGeluC) * x.cube())).tanh();
      gx = g * (T(0.5) * (T(1) + t) +
                T(0.5) * x * (T(1) - t.square()) * T(kSqrt2OverPi) * (T(1) + T(3 * kGeluC) * x.square()));
      return true;
    }
    default: return false;
  }
}

}  // namespace

void CpuBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double p) {
  dispatch_all(x.dtype(), unary_op_name(op), [&]<class T>() {
    T* o = out.data<T>();
    const T* px = x.data<T>();
    for_each_row<2>(out.shape(), {out.strides(), x.strides()}, [&](auto base, int64_t n, auto s) {
      T* y = o + base[0];
      const T* xi = px + base[1];
      if (s[0] == 1 && s[1] == 1) {
        // Switch outside the loop so each case is a tight, vectorizable loop.
        switch (op) {
          case UnaryOp::Relu:
            for (int64_t k = 0; k < n; ++k) y[k] = xi[k] > T(0) ? xi[k] : T(0);
            return;
          case UnaryOp::Neg:
            for (int64_t k = 0; k < n; ++k) y[k] = -xi[k];
            return;
          default:
            if (unary_simd<T>(op, xi, y, n)) return;
            for (int64_t k = 0; k < n; ++k) y[k] = unary_fn<T>(op, xi[k], p);
            return;
        }
      }
      for (int64_t k = 0; k < n; ++k) y[k * s[0]] = unary_fn<T>(op, xi[k * s[1]], p);
    });
  });
}

void CpuBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                double p) {
  dispatch_float(x.dtype(), unary_op_name(op), [&]<class T>() {
    // y is only read by ops whose derivative uses it; others may pass an undefined y.
    const Tensor& yy = y.defined() ? y : x;
    rows_apply<T, 4>(
        gx.shape(), {gx.strides(), x.strides(), yy.strides(), gy.strides()},
        {gx.data<T>(), x.data<T>(), yy.data<T>(), gy.data<T>()}, [&](auto ptr, int64_t n, auto s) {
          if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1 &&
              unary_grad_simd<T>(op, ptr[1], ptr[2], ptr[3], ptr[0], n))
            return;
          for (int64_t k = 0; k < n; ++k)
            ptr[0][k * s[0]] = ptr[3][k * s[3]] * unary_grad<T>(op, ptr[1][k * s[1]], ptr[2][k * s[2]], p);
        });
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_all(a.dtype(), binary_op_name(op), [&]<class T>() {
    // One instantiation per op, so that binary_fn's switch folds away inside the loop.
    auto run = [&]<BinaryOp Op>() {
      binary_loop<T>(a, b, out, [](T x, T y) { return binary_fn<T>(Op, x, y); });
    };
    switch (op) {
      case BinaryOp::Add: return run.template operator()<BinaryOp::Add>();
      case BinaryOp::Sub: return run.template operator()<BinaryOp::Sub>();
      case BinaryOp::Mul: return run.template operator()<BinaryOp::Mul>();
      case BinaryOp::Div: return run.template operator()<BinaryOp::Div>();
      case BinaryOp::Maximum: return run.template operator()<BinaryOp::Maximum>();
      case BinaryOp::Minimum: return run.template operator()<BinaryOp::Minimum>();
      case BinaryOp::Eq: return run.template operator()<BinaryOp::Eq>();
      case BinaryOp::Ne: return run.template operator()<BinaryOp::Ne>();
      case BinaryOp::Lt: return run.template operator()<BinaryOp::Lt>();
      case BinaryOp::Le: return run.template operator()<BinaryOp::Le>();
      case BinaryOp::Gt: return run.template operator()<BinaryOp::Gt>();
      case BinaryOp::Ge: return run.template operator()<BinaryOp::Ge>();
    }
  });
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_all(a.dtype(), "where", [&]<class T>() {
    dispatch_all(cond.dtype(), "where", [&]<class C>() {
      const C* pc = cond.data<C>();
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* o = out.data<T>();
      for_each_row<4>(out.shape(), {out.strides(), cond.strides(), a.strides(), b.strides()},
                      [&](auto base, int64_t n, auto s) {
                        for (int64_t k = 0; k < n; ++k)
                          o[base[0] + k * s[0]] = pc[base[1] + k * s[1]] != C(0) ? pa[base[2] + k * s[2]]
                                                                                 : pb[base[3] + k * s[3]];
                      });
    });
  });
}

}  // namespace cw::cpu
