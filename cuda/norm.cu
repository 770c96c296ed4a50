// CUDA softmax / log-softmax and layer norm, forward and backward, one block per row of the
// contiguous (rows, n) input (formulas in core/cpu/cpu_norm.cpp). A row's statistics come from
// block reductions; the row is re-read from global memory (L1/L2-resident) rather than staged
// in shared memory, so any row length works with one kernel.
//
// The layer-norm weight and bias gradients sum over all rows: a column pass over chunks of
// rows writes double partials (chunks, n), and a second pass adds the chunks in order, so the
// result does not depend on scheduling.
#include "cuda/cuda_backend.h"
#include "cuda/launch.cuh"

namespace cw::cuda {
namespace {

template <class T>
__device__ __forceinline__ T dexp(T x) {
  if constexpr (sizeof(T) == 4)
    return expf(x);
  else
    return exp(x);
}
template <class T>
__device__ __forceinline__ T dlog(T x) {
  if constexpr (sizeof(T) == 4)
    return logf(x);
  else
    return log(x);
}

template <class T>
__global__ void softmax_kernel(const T* x, T* y, int64_t n, bool log) {
  const T* xr = x + blockIdx.x * n;
  T* yr = y + blockIdx.x * n;
  T mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) mx = max(mx, xr[j]);
  mx = block_reduce(mx, MaxOp{}, T(-INFINITY));
  T s = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += dexp(xr[j] - mx);
  s = block_reduce(s, SumOp{}, T(0));
  if (log) {
    // (x - max) - log(sum), in this order (see the CPU kernel for why).
    const T log_s = dlog(s);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yr[j] = (xr[j] - mx) - log_s;
  } else {
    const T inv = T(1) / s;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yr[j] = dexp(xr[j] - mx) * inv;
  }
}

template <class T>
__global__ void softmax_backward_kernel(const T* y, const T* gy, T* gx, int64_t n, bool log) {
  const int64_t off = blockIdx.x * n;
  T s = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += log ? gy[off + j] : gy[off + j] * y[off + j];
  s = block_reduce(s, SumOp{}, T(0));
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const int64_t k = off + j;
    gx[k] = log ? gy[k] - dexp(y[k]) * s : y[k] * (gy[k] - s);
  }
}

template <class T>
__global__ void layer_norm_kernel(const T* x, const T* w, const T* b, double eps, T* y, T* mean, T* rstd,
                                  int64_t n) {
  const T* xr = x + blockIdx.x * n;
  T* yr = y + blockIdx.x * n;
  T s = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += xr[j];
  const T mu = n ? block_reduce(s, SumOp{}, T(0)) / static_cast<T>(n) : T(0);
  T v = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) v += (xr[j] - mu) * (xr[j] - mu);
  const T var = n ? block_reduce(v, SumOp{}, T(0)) / static_cast<T>(n) : T(0);
  const T rs = static_cast<T>(1.0 / sqrt(static_cast<double>(var) + eps));
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    T h = (xr[j] - mu) * rs;
    if (w) h *= w[j];
    if (b) h += b[j];
    yr[j] = h;
  }
  if (threadIdx.x == 0) {
    mean[blockIdx.x] = mu;
    rstd[blockIdx.x] = rs;
  }
}

// dx = rstd * (d - mean(d) - h * mean(d * h)), d = dy * w, h = (x - mean) * rstd.
template <class T>
__global__ void layer_norm_backward_kernel(const T* gy, const T* x, const T* mean, const T* rstd, const T* w,
                                           T* gx, int64_t n) {
  const int64_t off = blockIdx.x * n;
  const T m = mean[blockIdx.x], rs = rstd[blockIdx.x];
  T sd = 0, sdh = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const T d = w ? gy[off + j] * w[j] : gy[off + j];
    sd += d;
    sdh += d * (x[off + j] - m) * rs;
  }
  const T md = block_reduce(sd, SumOp{}, T(0)) / static_cast<T>(n);
  const T mdh = block_reduce(sdh, SumOp{}, T(0)) / static_cast<T>(n);
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const T d = w ? gy[off + j] * w[j] : gy[off + j];
    const T h = (x[off + j] - m) * rs;
    gx[off + j] = rs * (d - md - h * mdh);
  }
}

// Partials over rows [c*chunk, (c+1)*chunk) for column j: pw[c*n + j] = sum dy * h, pb = sum dy.
template <class T>
__global__ void layer_norm_param_partial_kernel(const T* gy, const T* x, const T* mean, const T* rstd,
                                                double* pw, double* pb, int64_t rows, int64_t n,
                                                int64_t chunk) {
  const int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (j >= n) return;
  const int64_t c = blockIdx.y, r0 = c * chunk, r1 = min(rows, r0 + chunk);
  double sw = 0, sb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const double g = gy[r * n + j];
    if (pw) sw += g * static_cast<double>((x[r * n + j] - mean[r]) * rstd[r]);
    sb += g;
  }
  if (pw) pw[c * n + j] = sw;
  if (pb) pb[c * n + j] = sb;
}

template <class T>
__global__ void sum_chunks_kernel(const double* part, T* out, int64_t chunks, int64_t n) {
  const int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (j >= n) return;
  double s = 0;
  for (int64_t c = 0; c < chunks; ++c) s += part[c * n + j];
  out[j] = static_cast<T>(s);
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr;
}

}  // namespace

void CudaBackend::softmax(const Tensor& x, Tensor& out, bool log) {
  const int64_t n = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  if (rows == 0) return;
  DeviceGuard g(x.device());
  dispatch_cuda<false>(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    softmax_kernel<T><<<static_cast<unsigned>(rows), row_threads(n), 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), n, log);
  });
  CW_CUDA_CHECK_LAUNCH("softmax_kernel");
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) {
  const int64_t n = y.dim() == 0 ? 1 : y.size(-1);
  const int64_t rows = n == 0 ? 0 : y.numel() / n;
  if (rows == 0) return;
  DeviceGuard g(y.device());
  dispatch_cuda<false>(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    softmax_backward_kernel<T><<<static_cast<unsigned>(rows), row_threads(n), 0, stream()>>>(
        static_cast<const T*>(y.raw_data()), static_cast<const T*>(gy.raw_data()),
        static_cast<T*>(gx.raw_data()), n, log);
  });
  CW_CUDA_CHECK_LAUNCH("softmax_backward_kernel");
}

void CudaBackend::layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                             Tensor& mean, Tensor& rstd) {
  const int64_t rows = x.size(0), n = x.size(1);
  if (rows == 0) return;
  DeviceGuard g(x.device());
  dispatch_cuda<false>(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    layer_norm_kernel<T><<<static_cast<unsigned>(rows), row_threads(n), 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), ptr_or_null<T>(weight), ptr_or_null<T>(bias), eps,
        static_cast<T*>(y.raw_data()), static_cast<T*>(mean.raw_data()), static_cast<T*>(rstd.raw_data()), n);
  });
  CW_CUDA_CHECK_LAUNCH("layer_norm_kernel");
}

void CudaBackend::layer_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& mean,
                                      const Tensor& rstd, const Tensor& weight, Tensor& gx, Tensor& gweight,
                                      Tensor& gbias) {
  const int64_t rows = x.size(0), n = x.size(1);
  DeviceGuard g(x.device());
  const bool need_w = gweight.defined(), need_b = gbias.defined();
  dispatch_cuda<false>(x.dtype(), "layer_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = static_cast<const T*>(gy.raw_data());
    const T* px = static_cast<const T*>(x.raw_data());
    const T* pm = static_cast<const T*>(mean.raw_data());
    const T* pr = static_cast<const T*>(rstd.raw_data());
    if (rows > 0 && n > 0)
      layer_norm_backward_kernel<T><<<static_cast<unsigned>(rows), row_threads(n), 0, stream()>>>(
          pg, px, pm, pr, ptr_or_null<T>(weight), static_cast<T*>(gx.raw_data()), n);
    if ((!need_w && !need_b) || n == 0) return;
    // About 64 rows per chunk, at most 1024 chunks: enough columns x chunks to fill the GPU.
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(1024, (rows + 63) / 64));
    const int64_t chunk = std::max<int64_t>(1, (rows + chunks - 1) / chunks);
    Tensor pw = need_w ? Tensor::empty({chunks, n}, DType::F64, x.device()) : Tensor();
    Tensor pb = need_b ? Tensor::empty({chunks, n}, DType::F64, x.device()) : Tensor();
    double* pwp = need_w ? static_cast<double*>(pw.raw_data()) : nullptr;
    double* pbp = need_b ? static_cast<double*>(pb.raw_data()) : nullptr;
    const dim3 grid(static_cast<unsigned>((n + kThreads - 1) / kThreads), static_cast<unsigned>(chunks));
    layer_norm_param_partial_kernel<T>
        <<<grid, kThreads, 0, stream()>>>(pg, px, pm, pr, pwp, pbp, rows, n, chunk);
    if (need_w)
      sum_chunks_kernel<T>
          <<<grid_for(n), kThreads, 0, stream()>>>(pwp, static_cast<T*>(gweight.raw_data()), chunks, n);
    if (need_b)
      sum_chunks_kernel<T>
          <<<grid_for(n), kThreads, 0, stream()>>>(pbp, static_cast<T*>(gbias.raw_data()), chunks, n);
  });
  CW_CUDA_CHECK_LAUNCH("layer_norm_backward kernels");
}

}  // namespace cw::cuda
