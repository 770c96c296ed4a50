// CPU kernels of CWCL's weight blocks (Backend::xent_weights, xent_weight_sums, row_topk): the
// kernel and mask in place on a block of cosines, the block's row and column sums, and each
// row's top k. Eigen's array math for the kernel (exp does not vectorize through std::exp),
// OpenMP over rows.
#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "core/cpu/cpu_backend.h"

namespace cw::cpu {
namespace {

constexpr int64_t kChunk = 256;
constexpr int64_t kParallelMin = int64_t{1} << 18;  // elements; fewer stay on one thread
template <class T>
using ChunkVec = Eigen::Array<T, Eigen::Dynamic, 1, 0, kChunk, 1>;  // on the stack

template <class T>
void weights_in_place(T* c, int64_t rows, int64_t n, int64_t row0, const XentWeightSpec& s,
                      const int64_t* offsets, const int64_t* index) {
  const T inv_t = static_cast<T>(1.0 / s.temperature);
  auto kernel = [&](const auto& cos) {
    if (s.kernel == XentWeightKernel::Linear) return ChunkVec<T>(cos * T(0.5) + T(0.5));
    return ChunkVec<T>(((cos - T(1)) * inv_t).exp());
  };
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t i = row0 + k;
    T* row = c + k * n;
    if (s.mask == XentWeightMask::TopK) {
      // Only the listed columns survive: gather their cosines, zero the row, scatter weights.
      const int64_t* cols = index + offsets[i];
      const int64_t count = offsets[i + 1] - offsets[i];
      std::vector<T> kept(count);
      for (int64_t a = 0; a < count; a += kChunk) {
        const int64_t width = std::min(kChunk, count - a);
        ChunkVec<T> cos(width);
        for (int64_t j = 0; j < width; ++j) cos[j] = row[cols[a + j]];
        Eigen::Map<ChunkVec<T>>(kept.data() + a, width) = kernel(cos);
      }
      std::fill(row, row + n, T(0));
      for (int64_t a = 0; a < count; ++a) row[cols[a]] = kept[a];
      continue;
    }
    for (int64_t j0 = 0; j0 < n; j0 += kChunk) {
      const int64_t width = std::min(kChunk, n - j0);
      Eigen::Map<ChunkVec<T>> x(row + j0, width);
      const ChunkVec<T> cos = x;  // the threshold reads the cosines after the kernel wrote x
      x = kernel(cos);
      if (s.mask == XentWeightMask::Threshold)
        for (int64_t j = 0; j < width; ++j)
          if (j0 + j != i && !(static_cast<double>(cos[j]) >= s.threshold)) x[j] = T(0);
    }
  }
}

}  // namespace

void CpuBackend::xent_weights(Tensor& c, int64_t row0, const XentWeightSpec& s, const Tensor& offsets,
                              const Tensor& index) {
  const bool topk = s.mask == XentWeightMask::TopK;
  dispatch_float(c.dtype(), "xent_weights", [&]<class T>() {
    weights_in_place<T>(c.data<T>(), c.size(0), c.size(1), row0, s, topk ? offsets.data<int64_t>() : nullptr,
                        topk ? index.data<int64_t>() : nullptr);
  });
}

void CpuBackend::xent_weight_sums(const Tensor& w, Tensor& rows_out, Tensor& cols_out) {
  const int64_t rows = w.size(0), n = w.size(1);
  double* rs = rows_out.data<double>();
  double* cs = cols_out.data<double>();
  dispatch_float(w.dtype(), "xent_weight_sums", [&]<class T>() {
    const T* p = w.data<T>();
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
    for (int64_t k = 0; k < rows; ++k)
      rs[k] = static_cast<double>(Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(p + k * n, n).sum());
    // Column sums over chunks of columns, each thread summing its chunks down the rows.
    const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      const int64_t j0 = ch * kChunk, width = std::min(kChunk, n - j0);
      ChunkVec<T> acc = ChunkVec<T>::Zero(width);
      for (int64_t k = 0; k < rows; ++k) acc += Eigen::Map<const ChunkVec<T>>(p + k * n + j0, width);
      for (int64_t j = 0; j < width; ++j) cs[j0 + j] += static_cast<double>(acc[j]);
    }
  });
}

void CpuBackend::row_topk(const Tensor& c, int64_t k, Tensor& idx_out) {
  const int64_t rows = c.size(0), n = c.size(1);
  int64_t* top = idx_out.data<int64_t>();
  dispatch_float(c.dtype(), "row_topk", [&]<class T>() {
    const T* p = c.data<T>();
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = p + r * n;
      std::vector<int64_t> idx(n);
      for (int64_t j = 0; j < n; ++j) idx[j] = j;
      // Larger value first; equal values by index, so the choice is deterministic.
      auto before = [row](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
      std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), before);
      std::copy(idx.begin(), idx.begin() + k, top + r * k);
    }
  });
}

}  // namespace cw::cpu
