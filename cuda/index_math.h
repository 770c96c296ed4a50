// The per-element index math of the indexing kernels (index.cu), host and device, so that
// tests/cuda/kernel_math_test.cpp checks it on the CPU against the CPU backend. Internal to cuda/.
#pragma once

#include <cstdint>

#include "core/host_device.h"
#include "core/tensor.h"
#include "cuda/strided.h"

namespace cw::cuda {

// (outer, size, inner) of a contiguous tensor around dim.
struct Around {
  int64_t outer = 1, size = 1, inner = 1;
};
inline Around around(const Shape& s, int64_t dim) {
  Around a;
  if (s.empty()) return a;
  for (int64_t d = 0; d < dim; ++d) a.outer *= s[d];
  a.size = s[dim];
  for (size_t d = dim + 1; d < s.size(); ++d) a.inner *= s[d];
  return a;
}

// index_select / index_add: element t = (o*n + i)*inner + j of the selected block maps to
// element (o*size + idx[i])*inner + j of the indexed tensor.
CW_HD int64_t selected_offset(int64_t t, const int64_t* idx, int64_t n, const Around& a) {
  const int64_t j = t % a.inner, oi = t / a.inner, i = oi % n, o = oi / n;
  return (o * a.size + idx[i]) * a.inner + j;
}

// Shape of the index tensor and the strides of the indexed tensor, for gather / scatter_add.
struct IndexGeo {
  int ndim;
  int64_t ishape[kMaxDims];
  int64_t xstride[kMaxDims];
};
inline IndexGeo index_geo(const Tensor& index, const Tensor& x, const char* op) {
  CW_CHECK(index.dim() <= kMaxDims, NotImplementedError, op, ": more than ", kMaxDims, " dims on cuda");
  IndexGeo g{};
  g.ndim = static_cast<int>(index.dim());
  for (int d = 0; d < g.ndim; ++d) {
    g.ishape[d] = index.size(d);
    g.xstride[d] = x.stride(d);
  }
  return g;
}

// Offset in x of element i of the contiguous index tensor, with the coordinate along dim
// replaced by the index value (as the CPU's gathered_offset).
CW_HD int64_t gathered_offset(int64_t i, const IndexGeo& g, int64_t dim, int64_t idx) {
  int64_t off = 0;
  for (int d = g.ndim - 1; d >= 0; --d) {
    const int64_t c = i % g.ishape[d];
    i /= g.ishape[d];
    off += (d == dim ? idx : c) * g.xstride[d];
  }
  return off;
}

}  // namespace cw::cuda
