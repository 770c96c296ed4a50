// CPU reductions over the middle axis of a contiguous (outer, r, inner) view. Sums accumulate
// in double, so a long f32 sum (e.g. a bias gradient over 64k rows) keeps its precision.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/strided_loop.h"

namespace cw::cpu {
namespace {

// Width of the blocks of `inner` handed to one thread: long enough to vectorize, short enough
// that a (1, r, C) reduction still splits across threads.
constexpr int64_t kInnerBlock = 256;

// Sums over contiguous rows (inner == 1): a full sum (outer == 1) or a last-axis sum. A row is cut
// into blocks of kSumBlock elements; each block is summed in the element type's SIMD lanes (Eigen's
// packet reduction), and block sums are added in double in block order, so the result does not
// depend on the thread count. A dependent double add per element (the general path below) runs at
// one element per cycle, ~20x slower than this for a 3M-element loss sum (BENCHMARKS.md).
constexpr int64_t kSumBlock = 4096;

template <class T>
void sum_rows(ReduceOp op, const T* x, T* y, int64_t outer, int64_t r) {
  using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
  const int64_t blocks = std::max<int64_t>(1, (r + kSumBlock - 1) / kSumBlock);
  std::vector<Acc> partial(static_cast<size_t>(outer * blocks));
  const int64_t tasks = outer * blocks;
#pragma omp parallel for schedule(static) if (outer * r >= kParallelGrain && tasks > 1)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t o = task / blocks, b = task % blocks;
    const int64_t i0 = b * kSumBlock, n = std::min(r, i0 + kSumBlock) - i0;
    partial[task] =
        n > 0
            ? static_cast<Acc>(Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(x + o * r + i0, n).sum())
            : Acc(0);
  }
  for (int64_t o = 0; o < outer; ++o) {
    Acc s = 0;
    for (int64_t b = 0; b < blocks; ++b) s += partial[o * blocks + b];
    y[o] = static_cast<T>(op == ReduceOp::Mean ? s / static_cast<Acc>(r) : s);
  }
}

// Sums over the rows of a (r, inner) matrix (outer == 1 and fewer than 4 column blocks: a bias
// gradient, the column sums of a (tokens, features) gradient), where blocks of `inner` alone would
// leave one task and one busy thread. The rows are cut into kRowBlock-row blocks, each task
// accumulates one block in double, and the blocks' sums are added in block order: the split
// depends on the shape only, so the result does not depend on the thread count.
constexpr int64_t kRowBlock = 512;

template <class T>
void sum_columns(ReduceOp op, const T* x, T* y, int64_t r, int64_t inner) {
  using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
  const int64_t blocks = (r + kRowBlock - 1) / kRowBlock;
  std::vector<Acc> partial(static_cast<size_t>(blocks * inner), Acc(0));
#pragma omp parallel for schedule(static) if (r * inner >= kParallelGrain && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    Acc* acc = partial.data() + b * inner;
    for (int64_t i = b * kRowBlock; i < std::min(r, (b + 1) * kRowBlock); ++i)
      for (int64_t j = 0; j < inner; ++j) acc[j] += static_cast<Acc>(x[i * inner + j]);
  }
  for (int64_t j = 0; j < inner; ++j) {
    Acc s = 0;
    for (int64_t b = 0; b < blocks; ++b) s += partial[b * inner + j];
    y[j] = static_cast<T>(op == ReduceOp::Mean ? s / static_cast<Acc>(r) : s);
  }
}

template <class T>
void reduce_typed(ReduceOp op, const T* x, Tensor& out, int64_t outer, int64_t r, int64_t inner) {
  using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
  if (inner == 1 && (op == ReduceOp::Sum || op == ReduceOp::Mean)) {
    sum_rows<T>(op, x, out.data<T>(), outer, r);
    return;
  }
  const bool few_tasks = outer * ((inner + kInnerBlock - 1) / kInnerBlock) < 4;
  if (few_tasks && outer == 1 && r > kRowBlock && (op == ReduceOp::Sum || op == ReduceOp::Mean)) {
    sum_columns<T>(op, x, out.data<T>(), r, inner);
    return;
  }
  const int64_t blocks = (inner + kInnerBlock - 1) / kInnerBlock;
  const int64_t tasks = outer * blocks;
#pragma omp parallel for schedule(static) if (outer * r * inner >= kParallelGrain && tasks > 1)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t o = task / blocks;
    const int64_t j0 = (task % blocks) * kInnerBlock, j1 = std::min(inner, j0 + kInnerBlock);
    const int64_t w = j1 - j0;
    const T* base = x + o * r * inner + j0;
    if (op == ReduceOp::ArgMax) {
      int64_t* y = out.data<int64_t>() + o * inner + j0;
      std::vector<T> best(static_cast<size_t>(w), -std::numeric_limits<T>::infinity());
      std::fill(y, y + w, int64_t{0});
      for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < w; ++j) {
          const T v = base[i * inner + j];
          // strict '>' keeps the first maximum; a NaN wins, as in PyTorch
          if (v > best[j] || (std::isnan(v) && !std::isnan(best[j]))) {
            best[j] = v;
            y[j] = i;
          }
        }
      continue;
    }
    T* y = out.data<T>() + o * inner + j0;
    if (op == ReduceOp::Max || op == ReduceOp::Min) {
      const bool is_max = op == ReduceOp::Max;
      for (int64_t j = 0; j < w; ++j) y[j] = base[j];
      for (int64_t i = 1; i < r; ++i)
        for (int64_t j = 0; j < w; ++j) {
          const T v = base[i * inner + j];
          if (std::isnan(v) || (is_max ? v > y[j] : v < y[j])) y[j] = std::isnan(y[j]) ? y[j] : v;
        }
      continue;
    }
    // Sum / Mean
    std::vector<Acc> acc(static_cast<size_t>(w), Acc(0));
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < w; ++j) acc[j] += static_cast<Acc>(base[i * inner + j]);
    for (int64_t j = 0; j < w; ++j)
      y[j] = static_cast<T>(op == ReduceOp::Mean ? acc[j] / static_cast<Acc>(r) : acc[j]);
  }
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& x, Tensor& out, int64_t outer, int64_t r, int64_t inner) {
  dispatch_all(x.dtype(), "reduce", [&]<class T>() {
    if constexpr (std::is_same_v<T, int64_t>) {
      // Integer reductions (sums of ids, bounds of index tensors) are rare and small: plain loops.
      const int64_t* p = x.data<int64_t>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < inner; ++j) {
          int64_t acc = op == ReduceOp::Max ? std::numeric_limits<int64_t>::min()
                                            : (op == ReduceOp::Min ? std::numeric_limits<int64_t>::max() : 0);
          int64_t arg = 0;
          for (int64_t i = 0; i < r; ++i) {
            const int64_t v = p[(o * r + i) * inner + j];
            if (op == ReduceOp::Max)
              acc = std::max(acc, v);
            else if (op == ReduceOp::Min)
              acc = std::min(acc, v);
            else if (op == ReduceOp::ArgMax) {
              if (i == 0 || v > acc) {
                acc = v;
                arg = i;
              }
            } else
              acc += v;
          }
          if (op == ReduceOp::ArgMax)
            acc = arg;
          else if (op == ReduceOp::Mean)
            acc = r ? acc / r : 0;
          out.data<int64_t>()[o * inner + j] = acc;
        }
    } else {
      reduce_typed<T>(op, x.data<T>(), out, outer, r, inner);
    }
  });
}

}  // namespace cw::cpu
