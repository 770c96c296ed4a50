// The combining rules of the reduction kernels (reduce.cu): Sum / Mean / Max / Min with NaN
// propagation, the final division of Mean, and ArgMax's "better" order (a NaN beats numbers, the
// larger value wins, ties go to the lower index). Host and device: tests/cuda/kernel_math_test.cpp
// checks on the host that any order of combining (as a block reduction's tree does) gives the
// CPU backend's answer. Internal to cuda/.
#pragma once

#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/backend.h"
#include "core/host_device.h"

namespace cw::cuda {

template <class T>
using AccT = std::conditional_t<std::is_same_v<T, float>, double, T>;

template <class A>
CW_HD bool is_nan(A v) {
  if constexpr (std::is_floating_point_v<A>)
    return v != v;
  else
    return false;
}

// Sum/Mean/Max/Min as one combining rule (Mean combines as Sum, divides at the end).
template <class A>
struct Combine {
  ReduceOp op;
  CW_HD A operator()(A a, A b) const {
    switch (op) {
      case ReduceOp::Max: return is_nan(a) ? a : (is_nan(b) ? b : (a > b ? a : b));
      case ReduceOp::Min: return is_nan(a) ? a : (is_nan(b) ? b : (a < b ? a : b));
      default: return a + b;
    }
  }
  CW_HD A identity() const {
    if constexpr (std::is_floating_point_v<A>) {
      if (op == ReduceOp::Max) return -INFINITY;
      if (op == ReduceOp::Min) return INFINITY;
    } else {
      if (op == ReduceOp::Max) return LLONG_MIN;
      if (op == ReduceOp::Min) return LLONG_MAX;
    }
    return A(0);
  }
};

template <class A, class T>
CW_HD T finalize(ReduceOp op, A acc, int64_t r) {
  if (op == ReduceOp::Mean) {
    if constexpr (std::is_floating_point_v<A>)
      return static_cast<T>(acc / static_cast<A>(r));
    else
      return static_cast<T>(r ? acc / r : 0);
  }
  return static_cast<T>(acc);
}

// ArgMax: `a` better than `b` (a NaN beats numbers, the larger value wins, ties to the lower index).
template <class T>
CW_HD bool better(T va, int64_t ia, T vb, int64_t ib) {
  if (is_nan(va) || is_nan(vb)) return is_nan(va) && (!is_nan(vb) || ia < ib);
  return va > vb || (va == vb && ia < ib);
}

template <class T>
CW_HD T lowest() {
  if constexpr (std::is_floating_point_v<T>)
    return -INFINITY;
  else
    return LLONG_MIN;
}

}  // namespace cw::cuda
