// OffsetCalc: linear element index -> element offset of each of N same-shaped strided operands,
// the index math under every strided CUDA kernel (the device twin of core/cpu/strided_loop.h).
// Dims that are contiguous in every operand are merged on the host first, so a contiguous or
// simply broadcast operand costs one division per element, and an all-contiguous op is flagged
// for the kernels' no-index-math path. Host and device (tests/cuda checks it on the CPU).
// Internal to cuda/.
#pragma once

#include <array>
#include <cstdint>

#include "core/error.h"
#include "core/host_device.h"
#include "core/shape.h"

namespace cw::cuda {

constexpr int kMaxDims = 12;  // after merging; more throws NotImplementedError

template <int N>
struct OffsetCalc {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];

  CW_HD void get(int64_t linear, int64_t (&off)[N]) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
  }
};

// Builds the calculator for operands of one shape; `contiguous` is set when every operand
// walks memory with stride 1 in element order (the Contig fast path applies).
template <int N>
OffsetCalc<N> make_offset_calc(const Shape& shape, const std::array<const Strides*, N>& strides,
                               bool& contiguous, const char* op) {
  OffsetCalc<N> c;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = c.ndim > 0;
    for (int k = 0; k < N && merge; ++k) merge = c.strides[k][c.ndim - 1] == (*strides[k])[d] * shape[d];
    if (merge) {
      c.sizes[c.ndim - 1] *= shape[d];
      for (int k = 0; k < N; ++k) c.strides[k][c.ndim - 1] = (*strides[k])[d];
    } else {
      CW_CHECK(c.ndim < kMaxDims, NotImplementedError, op, ": more than ", kMaxDims,
               " non-mergeable dims on cuda (shape ", shape_str(shape), ")");
      c.sizes[c.ndim] = shape[d];
      for (int k = 0; k < N; ++k) c.strides[k][c.ndim] = (*strides[k])[d];
      ++c.ndim;
    }
  }
  if (c.ndim == 0) {  // a scalar or all-ones shape: one element
    c.ndim = 1;
    c.sizes[0] = 1;
    for (int k = 0; k < N; ++k) c.strides[k][0] = 1;
  }
  contiguous = c.ndim == 1;
  for (int k = 0; k < N && contiguous; ++k) contiguous = c.strides[k][0] == 1;
  return c;
}

}  // namespace cw::cuda
