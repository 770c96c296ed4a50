// CUDA copies (strided, with dtype conversion), fills, ranges and Philox random draws (uniform,
// normal, dropout with its keep bits). The draws
// use the same (seed, offset + i) -> number map as the CPU backend (core/philox.h, one definition
// for both), so a tensor drawn on either device holds the same values (to the last bit for
// uniform; normal goes through log/cos, whose device versions may differ from glibc's in the last
// ulp). The multiply-adds are explicit fma(): g++ contracts the CPU backend's `lo + (hi - lo) * u`
// into one FMA on x86-64 with FMA (-march=native; seen in its assembly), so the device does the
// same. A CPU build without FMA rounds twice and differs in the last bit of f64 draws.
#include <cmath>

#include "core/philox.h"
#include "cuda/cuda_backend.h"
#include "cuda/launch.cuh"

namespace cw::cuda {

Backend& cuda_backend() {
  static CudaBackend b;
  return b;
}

namespace {

template <class S, class D, bool Contig>
__global__ void copy_kernel(const S* src, D* dst, int64_t n, OffsetCalc<2> calc) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    if constexpr (Contig) {
      dst[i] = static_cast<D>(src[i]);
    } else {
      int64_t off[2];
      calc.get(i, off);
      dst[off[0]] = static_cast<D>(src[off[1]]);
    }
  }
}

template <class T, bool Contig>
__global__ void fill_kernel(T* dst, int64_t n, T value, OffsetCalc<1> calc) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    if constexpr (Contig) {
      dst[i] = value;
    } else {
      int64_t off[1];
      calc.get(i, off);
      dst[off[0]] = value;
    }
  }
}

template <class T>
__global__ void arange_kernel(T* out, int64_t n, double start, double step) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = static_cast<T>(fma(static_cast<double>(i), step, start));
}

// One thread per 64-element group: its keep bits (core/philox.h, the CPU's formula) and the
// group's scaled elements.
template <class T>
__global__ void dropout_kernel(const T* x, T* y, uint64_t* mask, int64_t n, uint32_t threshold, T scale,
                               uint64_t seed, uint64_t offset) {
  const int64_t groups = (n + kDropoutGroup - 1) / kDropoutGroup;
  for (int64_t g = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; g < groups;
       g += int64_t{gridDim.x} * blockDim.x) {
    const uint64_t bits = dropout_keep_bits(offset, static_cast<uint64_t>(g), seed, threshold);
    mask[g] = bits;
    const int64_t base = g * kDropoutGroup, m = n - base < kDropoutGroup ? n - base : kDropoutGroup;
    for (int64_t k = 0; k < m; ++k) y[base + k] = ((bits >> k) & 1) ? x[base + k] * scale : T(0);
  }
}

// One thread per element: its bit of the forward's mask.
template <class T>
__global__ void dropout_backward_kernel(const T* g, const uint64_t* mask, T* gx, int64_t n, T scale) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    gx[i] = ((mask[i / kDropoutGroup] >> (i % kDropoutGroup)) & 1) ? g[i] * scale : T(0);
}

template <class T>
__global__ void uniform_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const Philox4 r = philox4x32(offset + static_cast<uint64_t>(i), 0, seed);
    T v = static_cast<T>(fma(hi - lo, uniform_double(r.v[0], r.v[1]), lo));
    // As on the CPU: rounding to f32 can land on hi; keep the interval half-open.
    if (v >= static_cast<T>(hi) && hi > lo) {
      if constexpr (sizeof(T) == 4)
        v = nextafterf(static_cast<float>(hi), static_cast<float>(lo));
      else
        v = nextafter(hi, lo);
    }
    out[i] = v;
  }
}

template <class T>
__global__ void normal_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    // Box-Muller on two uniforms of one block, in double, as the CPU backend.
    const Philox4 r = philox4x32(offset + static_cast<uint64_t>(i), 0, seed);
    const double u1 = 1.0 - uniform_double(r.v[0], r.v[1]);
    const double u2 = uniform_double(r.v[2], r.v[3]);
    out[i] = static_cast<T>(fma(std * sqrt(-2.0 * log(u1)), cos(2.0 * M_PI * u2), mean));
  }
}

}  // namespace

void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard g(dst.device());
  bool contig = false;
  const auto calc = make_offset_calc<2>(dst.shape(), {&dst.strides(), &src.strides()}, contig, "copy");
  dispatch_cuda<true>(src.dtype(), "copy", [&](auto s_tag) {
    using S = decltype(s_tag);
    dispatch_cuda<true>(dst.dtype(), "copy", [&](auto d_tag) {
      using D = decltype(d_tag);
      const S* s = static_cast<const S*>(src.raw_data());
      D* d = static_cast<D*>(dst.raw_data());
      if (contig && std::is_same_v<S, D>) {
        CW_CUDA_CHECK(cudaMemcpyAsync(d, s, n * sizeof(D), cudaMemcpyDeviceToDevice, stream()));
      } else if (contig) {
        copy_kernel<S, D, true><<<grid_for(n), kThreads, 0, stream()>>>(s, d, n, calc);
      } else {
        copy_kernel<S, D, false><<<grid_for(n), kThreads, 0, stream()>>>(s, d, n, calc);
      }
    });
  });
  CW_CUDA_CHECK_LAUNCH("copy_kernel");
}

void CudaBackend::fill(Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard g(dst.device());
  bool contig = false;
  const auto calc = make_offset_calc<1>(dst.shape(), {&dst.strides()}, contig, "fill");
  dispatch_cuda<true>(dst.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    T* d = static_cast<T*>(dst.raw_data());
    if (contig)
      fill_kernel<T, true><<<grid_for(n), kThreads, 0, stream()>>>(d, n, static_cast<T>(value), calc);
    else
      fill_kernel<T, false><<<grid_for(n), kThreads, 0, stream()>>>(d, n, static_cast<T>(value), calc);
  });
  CW_CUDA_CHECK_LAUNCH("fill_kernel");
}

void CudaBackend::arange(Tensor& out, double start, double step) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard g(out.device());
  dispatch_cuda<true>(out.dtype(), "arange", [&](auto tag) {
    using T = decltype(tag);
    arange_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(static_cast<T*>(out.raw_data()), n, start, step);
  });
  CW_CUDA_CHECK_LAUNCH("arange_kernel");
}

void CudaBackend::uniform(Tensor& out, uint64_t seed, uint64_t offset, double lo, double hi) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard g(out.device());
  dispatch_cuda<false>(out.dtype(), "uniform", [&](auto tag) {
    using T = decltype(tag);
    uniform_kernel<T>
        <<<grid_for(n), kThreads, 0, stream()>>>(static_cast<T*>(out.raw_data()), n, seed, offset, lo, hi);
  });
  CW_CUDA_CHECK_LAUNCH("uniform_kernel");
}

void CudaBackend::dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, Tensor& y,
                          Tensor& mask) {
  const int64_t n = x.numel();
  if (n == 0) return;
  DeviceGuard g(x.device());
  const int64_t groups = (n + kDropoutGroup - 1) / kDropoutGroup;
  dispatch_cuda<false>(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    dropout_kernel<T><<<grid_for(groups), kThreads, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(y.raw_data()),
        static_cast<uint64_t*>(mask.raw_data()), n, dropout_threshold(p), static_cast<T>(1.0 / (1.0 - p)),
        seed, offset);
  });
  CW_CUDA_CHECK_LAUNCH("dropout_kernel");
}

void CudaBackend::dropout_backward(const Tensor& g, const Tensor& mask, double p, Tensor& gx) {
  const int64_t n = g.numel();
  if (n == 0) return;
  DeviceGuard guard(g.device());
  dispatch_cuda<false>(g.dtype(), "dropout_backward", [&](auto tag) {
    using T = decltype(tag);
    dropout_backward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(
        static_cast<const T*>(g.raw_data()), static_cast<const uint64_t*>(mask.raw_data()),
        static_cast<T*>(gx.raw_data()), n, static_cast<T>(1.0 / (1.0 - p)));
  });
  CW_CUDA_CHECK_LAUNCH("dropout_backward_kernel");
}

void CudaBackend::normal(Tensor& out, uint64_t seed, uint64_t offset, double mean, double std) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard g(out.device());
  dispatch_cuda<false>(out.dtype(), "normal", [&](auto tag) {
    using T = decltype(tag);
    normal_kernel<T>
        <<<grid_for(n), kThreads, 0, stream()>>>(static_cast<T*>(out.raw_data()), n, seed, offset, mean, std);
  });
  CW_CUDA_CHECK_LAUNCH("normal_kernel");
}

}  // namespace cw::cuda
