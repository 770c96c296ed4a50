// CUDA elementwise kernels: unary functions and their derivatives, broadcasting binary ops and
// where. One grid-stride kernel per family; the op is a runtime switch (uniform across a warp,
// so it costs a branch, not divergence), which keeps the number of instantiations (and nvcc
// time) small. Operands are read through OffsetCalc (any strides, stride 0 where broadcast)
// unless all are contiguous. Derivatives are the CPU backend's (core/cpu/cpu_elementwise.cpp).
#include "cuda/cuda_backend.h"
#include "cuda/launch.cuh"

namespace cw::cuda {
namespace {

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluC = 0.044715;

// Precision-matched math: the float overloads (expf, ...) for f32, double ones for f64.
template <class T>
__device__ __forceinline__ T dexp(T x) {
  if constexpr (sizeof(T) == 4) return expf(x); else return exp(x);
}
template <class T>
__device__ __forceinline__ T dlog(T x) {
  if constexpr (sizeof(T) == 4) return logf(x); else return log(x);
}
template <class T>
__device__ __forceinline__ T dsqrt(T x) {
  if constexpr (sizeof(T) == 4) return sqrtf(x); else return sqrt(x);
}
template <class T>
__device__ __forceinline__ T dtanh(T x) {
  if constexpr (sizeof(T) == 4) return tanhf(x); else return tanh(x);
}
template <class T>
__device__ __forceinline__ T derf(T x) {
  if constexpr (sizeof(T) == 4) return erff(x); else return erf(x);
}
template <class T>
__device__ __forceinline__ T dpow(T x, T p) {
  if constexpr (sizeof(T) == 4) return powf(x, p); else return pow(x, p);
}

template <class T>
__device__ __forceinline__ T unary_fn(UnaryOp op, T x, double p) {
  if constexpr (std::is_integral_v<T>) {
    // ops.cpp lets only neg and abs reach integer tensors.
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
      case UnaryOp::GeluTanh: return T(0.5) * x * (T(1) + dtanh(T(kSqrt2OverPi) * (x + T(kGeluC) * x * x * x)));
      case UnaryOp::Silu: return x / (T(1) + dexp(-x));
      case UnaryOp::Abs: return x < T(0) ? -x : x;
      case UnaryOp::Pow: return dpow(x, static_cast<T>(p));
    }
    return x;
  }
}

// dy/dx given x and y = f(x) (derivations in core/cpu/cpu_elementwise.cpp).
template <class T>
__device__ __forceinline__ T unary_grad(UnaryOp op, T x, T y, double p) {
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
      return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * T(kSqrt2OverPi) * (T(1) + T(3 * kGeluC) * x * x);
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
__device__ __forceinline__ T binary_fn(BinaryOp op, T a, T b) {
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

#define CW_GRID_LOOP(i, n) \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); i += int64_t{gridDim.x} * blockDim.x)

template <class T, bool Contig>
__global__ void unary_kernel(UnaryOp op, const T* x, T* out, int64_t n, double p, OffsetCalc<2> calc) {
  CW_GRID_LOOP(i, n) {
    if constexpr (Contig) {
      out[i] = unary_fn<T>(op, x[i], p);
    } else {
      int64_t off[2];
      calc.get(i, off);
      out[off[0]] = unary_fn<T>(op, x[off[1]], p);
    }
  }
}

// Operand order: gx, x, y, gy.
template <class T, bool Contig>
__global__ void unary_backward_kernel(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, int64_t n, double p,
                                      OffsetCalc<4> calc) {
  CW_GRID_LOOP(i, n) {
    if constexpr (Contig) {
      gx[i] = gy[i] * unary_grad<T>(op, x[i], y[i], p);
    } else {
      int64_t off[4];
      calc.get(i, off);
      gx[off[0]] = gy[off[3]] * unary_grad<T>(op, x[off[1]], y[off[2]], p);
    }
  }
}

template <class T, bool Contig>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n, OffsetCalc<3> calc) {
  CW_GRID_LOOP(i, n) {
    if constexpr (Contig) {
      out[i] = binary_fn<T>(op, a[i], b[i]);
    } else {
      int64_t off[3];
      calc.get(i, off);
      out[off[0]] = binary_fn<T>(op, a[off[1]], b[off[2]]);
    }
  }
}

template <class T, class C>
__global__ void where_kernel(const C* cond, const T* a, const T* b, T* out, int64_t n, OffsetCalc<4> calc) {
  CW_GRID_LOOP(i, n) {
    int64_t off[4];
    calc.get(i, off);
    out[off[0]] = cond[off[1]] != C(0) ? a[off[2]] : b[off[3]];
  }
}

}  // namespace

void CudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double p) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard g(out.device());
  bool contig = false;
  const auto calc = make_offset_calc<2>(out.shape(), {&out.strides(), &x.strides()}, contig, unary_op_name(op));
  dispatch_cuda<true>(x.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    if (contig)
      unary_kernel<T, true><<<grid_for(n), kThreads, 0, stream()>>>(op, px, po, n, p, calc);
    else
      unary_kernel<T, false><<<grid_for(n), kThreads, 0, stream()>>>(op, px, po, n, p, calc);
  });
  CW_CUDA_CHECK_LAUNCH("unary_kernel");
}

void CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                 double p) {
  const int64_t n = gx.numel();
  if (n == 0) return;
  DeviceGuard g(gx.device());
  // y is only read by ops whose derivative uses it; others may pass an undefined y.
  const Tensor& yy = y.defined() ? y : x;
  bool contig = false;
  const auto calc = make_offset_calc<4>(gx.shape(), {&gx.strides(), &x.strides(), &yy.strides(), &gy.strides()},
                                        contig, unary_op_name(op));
  dispatch_cuda<false>(x.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.raw_data());
    const T* py = static_cast<const T*>(yy.raw_data());
    const T* pg = static_cast<const T*>(gy.raw_data());
    T* po = static_cast<T*>(gx.raw_data());
    if (contig)
      unary_backward_kernel<T, true><<<grid_for(n), kThreads, 0, stream()>>>(op, px, py, pg, po, n, p, calc);
    else
      unary_backward_kernel<T, false><<<grid_for(n), kThreads, 0, stream()>>>(op, px, py, pg, po, n, p, calc);
  });
  CW_CUDA_CHECK_LAUNCH("unary_backward_kernel");
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard g(out.device());
  bool contig = false;
  const auto calc = make_offset_calc<3>(out.shape(), {&out.strides(), &a.strides(), &b.strides()}, contig,
                                        binary_op_name(op));
  dispatch_cuda<true>(a.dtype(), binary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    if (contig)
      binary_kernel<T, true><<<grid_for(n), kThreads, 0, stream()>>>(op, pa, pb, po, n, calc);
    else
      binary_kernel<T, false><<<grid_for(n), kThreads, 0, stream()>>>(op, pa, pb, po, n, calc);
  });
  CW_CUDA_CHECK_LAUNCH("binary_kernel");
}

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard g(out.device());
  bool contig = false;
  const auto calc = make_offset_calc<4>(out.shape(), {&out.strides(), &cond.strides(), &a.strides(), &b.strides()},
                                        contig, "where");
  dispatch_cuda<true>(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    dispatch_cuda<true>(cond.dtype(), "where", [&](auto ctag) {
      using C = decltype(ctag);
      where_kernel<T, C><<<grid_for(n), kThreads, 0, stream()>>>(
          static_cast<const C*>(cond.raw_data()), static_cast<const T*>(a.raw_data()),
          static_cast<const T*>(b.raw_data()), static_cast<T*>(out.raw_data()), n, calc);
    });
  });
  CW_CUDA_CHECK_LAUNCH("where_kernel");
}

}  // namespace cw::cuda
