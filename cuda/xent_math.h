// The per-element and combining rules of the fused softmax cross-entropy kernels (xent.cu), in
// the order the CPU kernels (core/cpu/cpu_xent.cpp) apply them. Host and device, so that
// tests/cuda/kernel_math_test.cpp checks on the CPU that they give the CPU backend's answers
// whatever order a block or a slab split combines them in. Internal to cuda/.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/elementwise_math.h"
#include "core/host_device.h"

namespace cw::cuda {

// A column's online log-sum-exp over some rows: max, the first row attaining it, and
// sum_i exp(s_i - max). Empty: max -inf, sum 0.
struct ColumnLse {
  double max;
  int64_t arg;
  double sum;
};

// a then b, where a's rows all come before b's: the max of both; ties keep a's row (torch.argmax
// takes the first maximum); each sum is rescaled to the new max. A side that is still empty
// (max -inf) contributes nothing and is never rescaled (exp(-inf - -inf) would be NaN).
CW_HD ColumnLse merge_columns(ColumnLse a, ColumnLse b) {
  if (b.max == -INFINITY) return a;
  if (a.max == -INFINITY) return b;
  ColumnLse out;
  out.max = b.max > a.max ? b.max : a.max;
  out.arg = b.max > a.max ? b.arg : a.arg;
  out.sum = a.sum * exp(a.max - out.max) + b.sum * exp(b.max - out.max);
  return out;
}

// The first maximum of a row as a combining rule: the larger value, then the lower index.
// Finite inputs only (the losses reject NaN and Inf before any pass).
template <class T>
struct RowMax {
  T value;
  int64_t index;
};
template <class T>
CW_HD RowMax<T> better(RowMax<T> a, RowMax<T> b) {
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

// One element of the gradient block (Backend::xent_gradient), in the CPU kernel's order:
//   g = alpha e^{x - lse_i} [+ beta e^{x - clse_j}] [- row_w w] [- beta w cinv_j] [- diag if i == j]
// row_w = alpha / r_i. The bracketed terms are present when their flags say so.
template <class T>
CW_HD T gradient_element(T x, T w, T alpha, T lse_i, T beta, T clse_j, bool column_softmax, T row_w,
                         bool weighted_rows, T cinv_j, bool weighted_cols, T diag) {
  T g = alpha * dexp(x - lse_i);
  if (column_softmax) g += beta * dexp(x - clse_j);
  if (weighted_rows) g -= row_w * w;
  if (weighted_cols) g -= beta * w * cinv_j;
  return g - diag;
}

}  // namespace cw::cuda
