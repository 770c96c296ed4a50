// CUDA kernels of the fused row and optimizer primitives (Backend::first_nonfinite,
// l2_normalize_rows and its backward, adamw_step, sum_of_squares; the CPU kernels are
// core/cpu/cpu_fused.cpp). The per-element formulas are core/kernel_math.h's, shared with the
// CPU; only the order of a row's (or a tensor's) sum differs: block reductions here. Sums that
// come back to the host are per-block f64 partials added on the host in block order, so they do
// not depend on scheduling.
#include <vector>

#include "core/kernel_math.h"
#include "cuda/cuda_backend.h"
#include "cuda/launch.cuh"

namespace cw::cuda {
namespace {

// Larger than any element index: "none found yet".
constexpr unsigned long long kNone = ~0ull;

template <class T>
__global__ void first_nonfinite_kernel(const T* x, int64_t n, unsigned long long* first) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    if (!isfinite(x[i])) atomicMin(first, static_cast<unsigned long long>(i));
}

// One block per row.
template <class T>
__global__ void l2_normalize_rows_kernel(const T* x, int64_t d, double eps, T* unit, T* norm) {
  const T* xr = x + blockIdx.x * d;
  T* ur = unit + blockIdx.x * d;
  double ss = 0.0;
  for (int64_t k = threadIdx.x; k < d; k += blockDim.x) ss += static_cast<double>(xr[k]) * xr[k];
  ss = block_reduce(ss, SumOp{}, 0.0);
  const double row_norm = sqrt(ss);
  const T inv = static_cast<T>(1.0 / l2_clamped_norm(row_norm, eps));
  if (threadIdx.x == 0) norm[blockIdx.x] = static_cast<T>(row_norm);
  for (int64_t k = threadIdx.x; k < d; k += blockDim.x) ur[k] = xr[k] * inv;
}

template <class T>
__global__ void l2_normalize_rows_backward_kernel(const T* g, const T* unit, const T* norm, int64_t d,
                                                  double eps, T* gx) {
  const T* gr = g + blockIdx.x * d;
  const T* ur = unit + blockIdx.x * d;
  T* out = gx + blockIdx.x * d;
  const double nr = static_cast<double>(norm[blockIdx.x]);
  double radial = 0.0;  // <u, g>, dropped where the norm was clamped
  if (nr > eps) {
    for (int64_t k = threadIdx.x; k < d; k += blockDim.x) radial += static_cast<double>(ur[k]) * gr[k];
    radial = block_reduce(radial, SumOp{}, 0.0);
  }
  const double inv = 1.0 / l2_clamped_norm(nr, eps);
  for (int64_t k = threadIdx.x; k < d; k += blockDim.x)
    out[k] = static_cast<T>(
        l2_normalize_grad(static_cast<double>(gr[k]), static_cast<double>(ur[k]), radial, inv));
}

template <class T>
__global__ void adamw_kernel(T* p, const T* g, T* m, T* v, int64_t n, AdamWStep s) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    double pi = p[i], mi = m[i], vi = v[i];
    adamw_update(pi, mi, vi, static_cast<double>(g[i]), s);
    m[i] = static_cast<T>(mi);
    v[i] = static_cast<T>(vi);
    p[i] = static_cast<T>(pi);
  }
}

// partials[b] = block b's share of sum x_i^2, in f64.
template <class T>
__global__ void sum_of_squares_kernel(const T* x, int64_t n, double* partials) {
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  s = block_reduce(s, SumOp{}, 0.0);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

}  // namespace

int64_t CudaBackend::first_nonfinite(const Tensor& x) {
  const int64_t n = x.numel();
  if (n == 0) return -1;
  DeviceGuard g(x.device());
  Tensor first = Tensor::empty({1}, DType::I64, x.device());
  auto* slot = static_cast<unsigned long long*>(first.raw_data());
  CW_CUDA_CHECK(cudaMemsetAsync(slot, 0xFF, sizeof(unsigned long long), stream()));  // kNone
  dispatch_cuda<false>(x.dtype(), "first_nonfinite", [&](auto tag) {
    using T = decltype(tag);
    first_nonfinite_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(x.data<T>(), n, slot);
  });
  CW_CUDA_CHECK_LAUNCH("first_nonfinite_kernel");
  const auto found = static_cast<unsigned long long>(first.to(Device::cpu()).data<int64_t>()[0]);
  return found == kNone ? -1 : static_cast<int64_t>(found);
}

void CudaBackend::l2_normalize_rows(const Tensor& x, double eps, Tensor& unit, Tensor& norm) {
  const int64_t rows = x.size(0), d = x.size(1);
  if (rows == 0) return;
  DeviceGuard g(x.device());
  dispatch_cuda<false>(x.dtype(), "l2_normalize_rows", [&](auto tag) {
    using T = decltype(tag);
    l2_normalize_rows_kernel<T><<<static_cast<unsigned>(rows), row_threads(d, kThreads), 0, stream()>>>(
        x.data<T>(), d, eps, unit.data<T>(), norm.data<T>());
  });
  CW_CUDA_CHECK_LAUNCH("l2_normalize_rows_kernel");
}

void CudaBackend::l2_normalize_rows_backward(const Tensor& gy, const Tensor& unit, const Tensor& norm,
                                             double eps, Tensor& gx) {
  const int64_t rows = gy.size(0), d = gy.size(1);
  if (rows == 0) return;
  DeviceGuard g(gy.device());
  dispatch_cuda<false>(gy.dtype(), "l2_normalize_rows_backward", [&](auto tag) {
    using T = decltype(tag);
    l2_normalize_rows_backward_kernel<T>
        <<<static_cast<unsigned>(rows), row_threads(d, kThreads), 0, stream()>>>(
            gy.data<T>(), unit.data<T>(), norm.data<T>(), d, eps, gx.data<T>());
  });
  CW_CUDA_CHECK_LAUNCH("l2_normalize_rows_backward_kernel");
}

void CudaBackend::adamw_step(Tensor& p, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) {
  const int64_t n = p.numel();
  if (n == 0) return;
  DeviceGuard g(p.device());
  dispatch_cuda<false>(p.dtype(), "adamw_step", [&](auto tag) {
    using T = decltype(tag);
    adamw_kernel<T>
        <<<grid_for(n), kThreads, 0, stream()>>>(p.data<T>(), grad.data<T>(), m.data<T>(), v.data<T>(), n, s);
  });
  CW_CUDA_CHECK_LAUNCH("adamw_kernel");
}

double CudaBackend::sum_of_squares(const Tensor& x) {
  const int64_t n = x.numel();
  if (n == 0) return 0.0;
  DeviceGuard g(x.device());
  const unsigned blocks = grid_for(n) < 1024u ? grid_for(n) : 1024u;  // a grid-stride loop covers the rest
  Tensor partials = Tensor::empty({int64_t{blocks}}, DType::F64, x.device());
  dispatch_cuda<false>(x.dtype(), "sum_of_squares", [&](auto tag) {
    using T = decltype(tag);
    sum_of_squares_kernel<T><<<blocks, kThreads, 0, stream()>>>(x.data<T>(), n, partials.data<double>());
  });
  CW_CUDA_CHECK_LAUNCH("sum_of_squares_kernel");
  double total = 0.0;
  for (double s : partials.to(Device::cpu()).to_vector<double>()) total += s;
  return total;
}

}  // namespace cw::cuda
