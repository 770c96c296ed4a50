// CPU indexing kernels: index_select / index_add (rows along one dim, copied or accumulated as
// whole inner blocks) and gather / scatter_add (element by element). Indices were bounds-checked
// by ops_index.cpp. Accumulating kernels run serially where indices may repeat.
#include <cstring>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/strided_loop.h"

namespace cw::cpu {
namespace {

// (outer, size, inner) of a contiguous tensor around `dim`.
struct Around {
  int64_t outer = 1, size = 1, inner = 1;
};
Around around(const Shape& s, int64_t dim) {
  Around a;
  if (s.empty()) return a;
  for (int64_t d = 0; d < dim; ++d) a.outer *= s[d];
  a.size = s[dim];
  for (size_t d = dim + 1; d < s.size(); ++d) a.inner *= s[d];
  return a;
}

// Offset in x (contiguous strides xs) of element i of the contiguous index tensor, with the
// coordinate along dim replaced by the index value.
int64_t gathered_offset(int64_t i, const Shape& ishape, const Strides& xs, int64_t dim, int64_t idx) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(ishape.size()) - 1; d >= 0; --d) {
    const int64_t c = i % ishape[d];
    i /= ishape[d];
    off += (d == dim ? idx : c) * xs[d];
  }
  return off;
}

}  // namespace

void CpuBackend::index_select(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) {
  const Around a = around(x.shape(), dim);
  const int64_t n = index.numel();
  const int64_t* idx = index.data<int64_t>();
  const size_t row_bytes = static_cast<size_t>(a.inner) * dtype_size(x.dtype());
  const char* px = static_cast<const char*>(x.raw_data());
  char* po = static_cast<char*>(out.raw_data());
#pragma omp parallel for schedule(static) if (out.numel() >= kParallelGrain)
  for (int64_t t = 0; t < a.outer * n; ++t) {
    const int64_t o = t / n, i = t % n;
    std::memcpy(po + static_cast<size_t>(t) * row_bytes,
                px + static_cast<size_t>(o * a.size + idx[i]) * row_bytes, row_bytes);
  }
}

void CpuBackend::index_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  dispatch_all(out.dtype(), "index_add", [&]<class T>() {
    const Around a = around(out.shape(), dim);
    const int64_t n = index.numel();
    const int64_t* idx = index.data<int64_t>();
    const T* ps = src.data<T>();
    T* po = out.data<T>();
    // Different outer slices never collide, so they can run in parallel; within one slice a
    // repeated index (a token seen twice) must accumulate serially.
#pragma omp parallel for schedule(static) if (a.outer > 1 && src.numel() >= kParallelGrain)
    for (int64_t o = 0; o < a.outer; ++o)
      for (int64_t i = 0; i < n; ++i) {
        T* dst = po + (o * a.size + idx[i]) * a.inner;
        const T* s = ps + (o * n + i) * a.inner;
        for (int64_t j = 0; j < a.inner; ++j) dst[j] += s[j];
      }
  });
}

void CpuBackend::gather(const Tensor& x, int64_t dim, const Tensor& index, Tensor& out) {
  dispatch_all(x.dtype(), "gather", [&]<class T>() {
    const int64_t* idx = index.data<int64_t>();
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const Strides xs = x.strides();
#pragma omp parallel for schedule(static) if (out.numel() >= kParallelGrain)
    for (int64_t i = 0; i < out.numel(); ++i) po[i] = px[gathered_offset(i, index.shape(), xs, dim, idx[i])];
  });
}

void CpuBackend::scatter_add(Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  dispatch_all(out.dtype(), "scatter_add", [&]<class T>() {
    const int64_t* idx = index.data<int64_t>();
    const T* ps = src.data<T>();
    T* po = out.data<T>();
    const Strides os = out.strides();
    for (int64_t i = 0; i < src.numel(); ++i) po[gathered_offset(i, index.shape(), os, dim, idx[i])] += ps[i];
  });
}

}  // namespace cw::cpu
