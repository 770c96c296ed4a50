// Iteration over N same-shaped strided operands, the engine under every elementwise CPU
// kernel. Adjacent dims that are contiguous in every operand are merged first, so a contiguous
// or simply broadcast tensor becomes one long row; the kernel then gets rows
// (base offsets, length, per-operand element step) and writes a tight loop the compiler can
// vectorize. Rows are split across OpenMP threads when the work is large. Part of core/cpu.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

#include "core/shape.h"

namespace cw::cpu {

// Work below this many elements runs on one thread: thread start-up costs more than it saves.
constexpr int64_t kParallelGrain = 32768;

template <size_t N>
struct Coalesced {
  Shape shape;
  std::array<Strides, N> strides;
};

// Merges dim d into d+1 wherever stride[d] == stride[d+1] * shape[d+1] for every operand.
template <size_t N>
Coalesced<N> coalesce(const Shape& shape, const std::array<Strides, N>& strides) {
  Coalesced<N> c;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;  // size-1 dims contribute nothing
    bool merge = !c.shape.empty();
    for (size_t k = 0; k < N && merge; ++k) merge = c.strides[k].back() == strides[k][d] * shape[d];
    if (merge) {
      c.shape.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) c.strides[k].back() = strides[k][d];
    } else {
      c.shape.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) c.strides[k].push_back(strides[k][d]);
    }
  }
  if (c.shape.empty()) {  // a scalar, or all dims of size 1: one row of one element
    c.shape.push_back(1);
    for (size_t k = 0; k < N; ++k) c.strides[k].push_back(0);
  }
  return c;
}

// Calls row(base, n, step) for every innermost row; base[k] is operand k's element offset of
// the row's first element and step[k] its stride along the row.
template <size_t N, class RowFn>
void for_each_row(const Shape& shape, const std::array<Strides, N>& strides, RowFn row) {
  const Coalesced<N> c = coalesce<N>(shape, strides);
  const int64_t nd = static_cast<int64_t>(c.shape.size());
  const int64_t inner = c.shape.back();
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < nd; ++d) rows *= c.shape[d];
  if (inner == 0 || rows == 0) return;
  std::array<int64_t, N> step;
  for (size_t k = 0; k < N; ++k) step[k] = c.strides[k].back();

  // Offsets of row r: decompose r over the outer dims.
  auto run = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      std::array<int64_t, N> base{};
      int64_t rem = r;
      for (int64_t d = nd - 2; d >= 0; --d) {
        const int64_t i = rem % c.shape[d];
        rem /= c.shape[d];
        for (size_t k = 0; k < N; ++k) base[k] += i * c.strides[k][d];
      }
      row(base, inner, step);
    }
  };
  if (rows * inner >= kParallelGrain && rows > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) run(r, r + 1);
  } else if (rows == 1 && inner >= 2 * kParallelGrain) {
    // One long row: split it into chunks so that both cores work.
    const int64_t chunks = (inner + kParallelGrain - 1) / kParallelGrain;
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      const int64_t s = ch * kParallelGrain, e = std::min(inner, s + kParallelGrain);
      std::array<int64_t, N> base{};
      for (size_t k = 0; k < N; ++k) base[k] = s * step[k];
      row(base, e - s, step);
    }
  } else {
    run(0, rows);
  }
}

}  // namespace cw::cpu
