// CUDA indexing kernels: index_select and gather copy (thread per output element); index_add
// and scatter_add accumulate with atomicAdd, since indices may repeat (a token seen twice).
// Float atomics make the order of additions, and so the last bits of a sum over repeated
// indices, vary run to run; the CPU backend adds serially. Indices were bounds-checked by
// core/ops_index.cpp before any kernel runs.
#include "cuda/cuda_backend.h"
#include "cuda/index_math.h"
#include "cuda/launch.cuh"

namespace cw::cuda {
namespace {

#define CW_GRID_LOOP(i, n)                                                  \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); \
       i += int64_t{gridDim.x} * blockDim.x)

template <class T>
__device__ __forceinline__ void atomic_add(T* p, T v) {
  if constexpr (std::is_same_v<T, int64_t>)
    atomicAdd(reinterpret_cast<unsigned long long*>(p),
              static_cast<unsigned long long>(v));  // two's complement
  else
    atomicAdd(p, v);
}

template <class T>
__global__ void index_select_kernel(const T* x, const int64_t* idx, T* out, int64_t total, int64_t n,
                                    Around a) {
  CW_GRID_LOOP(t, total) {
    // t = (o * n + i) * inner + j
    out[t] = x[selected_offset(t, idx, n, a)];
  }
}

template <class T>
__global__ void index_add_kernel(T* out, const int64_t* idx, const T* src, int64_t total, int64_t n,
                                 Around a) {
  CW_GRID_LOOP(t, total) { atomic_add(&out[selected_offset(t, idx, n, a)], src[t]); }
}

template <class T>
__global__ void gather_kernel(const T* x, const int64_t* idx, T* out, int64_t total, int64_t dim,
                              IndexGeo g) {
  CW_GRID_LOOP(i, total) out[i] = x[gathered_offset(i, g, dim, idx[i])];
}

template <class T>
__global__ void scatter_add_kernel(T* out, const int64_t* idx, const T* src, int64_t total, int64_t dim,
                                   IndexGeo g) {
  CW_GRID_LOOP(i, total) atomic_add(&out[gathered_offset(i, g, dim, idx[i])], src[i]);
}

}  // namespace

void CudaBackend::index_select(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) {
  const int64_t total = out.numel();
  if (total == 0) return;
  DeviceGuard g(x.device());
  const Around a = around(x.shape(), dim);
  dispatch_cuda<true>(x.dtype(), "index_select", [&](auto tag) {
    using T = decltype(tag);
    index_select_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const int64_t*>(index.raw_data()),
        static_cast<T*>(out.raw_data()), total, index.numel(), a);
  });
  CW_CUDA_CHECK_LAUNCH("index_select_kernel");
}

void CudaBackend::index_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const int64_t total = src.numel();
  if (total == 0) return;
  DeviceGuard g(out.device());
  const Around a = around(out.shape(), dim);
  dispatch_cuda<true>(out.dtype(), "index_add", [&](auto tag) {
    using T = decltype(tag);
    index_add_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(
        static_cast<T*>(out.raw_data()), static_cast<const int64_t*>(index.raw_data()),
        static_cast<const T*>(src.raw_data()), total, index.numel(), a);
  });
  CW_CUDA_CHECK_LAUNCH("index_add_kernel");
}

void CudaBackend::gather(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) {
  const int64_t total = out.numel();
  if (total == 0) return;
  DeviceGuard g(x.device());
  const IndexGeo geo = index_geo(index, x, "gather");
  dispatch_cuda<true>(x.dtype(), "gather", [&](auto tag) {
    using T = decltype(tag);
    gather_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const int64_t*>(index.raw_data()),
        static_cast<T*>(out.raw_data()), total, dim, geo);
  });
  CW_CUDA_CHECK_LAUNCH("gather_kernel");
}

void CudaBackend::scatter_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  const int64_t total = src.numel();
  if (total == 0) return;
  DeviceGuard g(out.device());
  const IndexGeo geo = index_geo(index, out, "scatter_add");
  dispatch_cuda<true>(out.dtype(), "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    scatter_add_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(
        static_cast<T*>(out.raw_data()), static_cast<const int64_t*>(index.raw_data()),
        static_cast<const T*>(src.raw_data()), total, dim, geo);
  });
  CW_CUDA_CHECK_LAUNCH("scatter_add_kernel");
}

}  // namespace cw::cuda
