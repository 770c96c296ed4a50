// CPU (batched) matmul. Each operand matrix is read in place when it is row-major or
// transposed (column-major) with any leading dimension, so x @ W.t() never copies W. The
// product goes to OpenBLAS when the build found it (CW_HAVE_CBLAS, measured faster than Eigen's
// own GEMM on this project's machines, see BENCHMARKS.md), otherwise to Eigen. Batches of small
// products run in parallel over the batch; a big product threads inside the GEMM instead. A
// product of one or two rows is one GEMV per row (BLAS's GEMM packs all of B for a single row).
#include <Eigen/Core>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/cpu/cpu_backend.h"
#include "core/cpu/strided_loop.h"

#ifdef CW_HAVE_CBLAS
#include <cblas.h>
#endif

namespace cw::cpu {
namespace {

// How one (rows, cols) operand matrix sits in memory.
struct MatLayout {
  bool transposed;  // false: row-major, ld = row stride; true: column-major, ld = column stride
  int64_t ld;
};

// Layout of the last two dims, or nullopt-like {false, -1} when neither fits.
MatLayout layout_of(const Tensor& t) {
  const int64_t rows = t.size(-2), cols = t.size(-1);
  const int64_t s0 = t.stride(-2), s1 = t.stride(-1);
  if ((s1 == 1 || cols == 1) && (s0 >= std::max<int64_t>(cols, 1) || rows == 1))
    return {false, rows == 1 ? std::max<int64_t>(cols, 1) : s0};
  if ((s0 == 1 || rows == 1) && (s1 >= std::max<int64_t>(rows, 1) || cols == 1))
    return {true, cols == 1 ? std::max<int64_t>(rows, 1) : s1};
  return {false, -1};
}

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ColMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
template <class M>
using StridedMap = Eigen::Map<const M, 0, Eigen::OuterStride<>>;

// At most this many rows go to GEMV, one call per row. Measured with OpenBLAS 0.3.21 (SkylakeX
// kernels, 1 thread) on the Whisper decoder's (M, 384) @ (384, 51864): M = 1 GEMM 80 ms vs GEMV
// 39 ms; M = 2 121 vs 93 ms; M = 3 104 vs 167 ms (GEMM's packing of B pays off from 3 rows).
constexpr int64_t kGemvMaxRows = 2;

// c (M, N) = a @ b, or c += a @ b when accumulate (beta = 1: BLAS then reads c instead of
// zeroing it first).
template <class T>
void gemm(const T* a, MatLayout la, const T* b, MatLayout lb, T* c, int64_t M, int64_t N, int64_t K,
          bool accumulate) {
#ifdef CW_HAVE_CBLAS
  const T beta = accumulate ? T(1) : T(0);
  if (M <= kGemvMaxRows) {
    // Row i of c is b^T a_i: b row-major (K, N) is BLAS's Trans of a (K, N) matrix; b column-major
    // is a row-major (N, K), NoTrans. Row i of a starts at i * ld (row-major, unit stride) or at
    // i (column-major, stride ld).
    const auto tb = lb.transposed ? CblasNoTrans : CblasTrans;
    const int64_t rows = lb.transposed ? N : K, cols = lb.transposed ? K : N;
    const int64_t inc = la.transposed ? la.ld : 1;
    for (int64_t i = 0; i < M; ++i) {
      const T* ai = a + (la.transposed ? i : i * la.ld);
      if constexpr (std::is_same_v<T, float>)
        cblas_sgemv(CblasRowMajor, tb, rows, cols, 1.0f, b, lb.ld, ai, inc, beta, c + i * N, 1);
      else
        cblas_dgemv(CblasRowMajor, tb, rows, cols, 1.0, b, lb.ld, ai, inc, beta, c + i * N, 1);
    }
    return;
  }
  const auto ta = la.transposed ? CblasTrans : CblasNoTrans;
  const auto tb = lb.transposed ? CblasTrans : CblasNoTrans;
  // A column-major (M, K) is a row-major (K, M) read transposed: BLAS's Trans flag.
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, a, la.ld, b, lb.ld, beta, c, N);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, 1.0, a, la.ld, b, lb.ld, beta, c, N);
#else
  Eigen::Map<RowMat<T>> C(c, M, N);
  auto with_b = [&](const auto& A) {
    if (lb.transposed) {
      const auto B = StridedMap<ColMat<T>>(b, K, N, Eigen::OuterStride<>(lb.ld));
      if (accumulate)
        C.noalias() += A * B;
      else
        C.noalias() = A * B;
    } else {
      const auto B = StridedMap<RowMat<T>>(b, K, N, Eigen::OuterStride<>(lb.ld));
      if (accumulate)
        C.noalias() += A * B;
      else
        C.noalias() = A * B;
    }
  };
  if (la.transposed)
    with_b(StridedMap<ColMat<T>>(a, M, K, Eigen::OuterStride<>(la.ld)));
  else
    with_b(StridedMap<RowMat<T>>(a, M, K, Eigen::OuterStride<>(la.ld)));
#endif
}

// Products below this many multiply-adds are not worth splitting over threads.
constexpr int64_t kSplitMinWork = int64_t{1} << 21;

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace

void CpuBackend::matmul(const Tensor& a_in, const Tensor& b_in, Tensor& out, bool accumulate) {
  const int64_t M = a_in.size(-2), K = a_in.size(-1), N = b_in.size(-1);
  // An operand that is neither row- nor column-major in its last two dims gets one copy.
  Tensor a = a_in, b = b_in;
  MatLayout la = layout_of(a), lb = layout_of(b);
  if (la.ld < 0) {
    a = a.contiguous();
    la = layout_of(a);
  }
  if (lb.ld < 0) {
    b = b.contiguous();
    lb = layout_of(b);
  }
  // Batch offsets of each operand (batch dims may be broadcast with stride 0).
  const int64_t nb = out.dim() - 2;
  const Shape batch(out.shape().begin(), out.shape().begin() + nb);
  const int64_t count = numel_of(batch);
  std::vector<int64_t> off_a(count), off_b(count);
  for (int64_t i = 0; i < count; ++i) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int64_t d = nb - 1; d >= 0; --d) {
      const int64_t idx = rem % batch[d];
      rem /= batch[d];
      oa += idx * a.stride(d);
      ob += idx * b.stride(d);
    }
    off_a[i] = oa;
    off_b[i] = ob;
  }
  if (M == 0 || N == 0) return;
  dispatch_float(out.dtype(), "matmul", [&]<class T>() {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = out.data<T>();
    if (K == 0) {
      if (!accumulate) std::fill(pc, pc + out.numel(), T(0));
      return;
    }
    // Small products (attention heads) parallelize over the batch, one GEMM per thread; a big
    // product threads inside the GEMM instead, and a tiny batch is not worth waking threads.
    const int64_t work = M * N * K;
    const bool parallel_batch = count > 1 && work < (1 << 22) && count * work >= (1 << 17);
    if (parallel_batch) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < count; ++i)
        gemm<T>(pa + off_a[i], la, pb + off_b[i], lb, pc + i * M * N, M, N, K, accumulate);
      return;
    }
    // A big product is split into row slices, one per thread of our OpenMP team, each a
    // single-threaded GEMM (BLAS called inside a parallel region stays on its thread). Measured
    // on 2 cores: OpenBLAS's own threading ran up to ~2x slower when it followed OpenMP regions
    // of ours (their worker threads contend), while row slices cost the same either way.
    const int threads = max_threads();
    const bool split = threads > 1 && M >= 2 * threads && work >= kSplitMinWork;
    for (int64_t i = 0; i < count; ++i) {
      const T* ai = pa + off_a[i];
      T* ci = pc + i * M * N;
      if (!split) {
        gemm<T>(ai, la, pb + off_b[i], lb, ci, M, N, K, accumulate);
        continue;
      }
#pragma omp parallel for schedule(static) num_threads(threads)
      for (int t = 0; t < threads; ++t) {
        const int64_t r0 = M * t / threads, r1 = M * (t + 1) / threads;
        // Row r0 of A starts r0 * ld in (row-major) or r0 in (column-major, rows contiguous).
        const T* a_rows = ai + (la.transposed ? r0 : r0 * la.ld);
        gemm<T>(a_rows, la, pb + off_b[i], lb, ci + r0 * N, r1 - r0, N, K, accumulate);
      }
    }
  });
}

}  // namespace cw::cpu
