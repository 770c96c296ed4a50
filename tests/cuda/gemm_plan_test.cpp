// The cuBLAS call plan of the CUDA matmul (cuda/gemm_plan.h), checked on the host without a GPU:
// each plan is run through a reference implementation of cuBLAS's column-major GEMM semantics
// (op flags, leading dimensions, batch offsets) on CPU tensors and compared with the CPU
// matmul; the leading dimensions must also satisfy cuBLAS's documented bounds.
#include "cuda/gemm_plan.h"

#include <gtest/gtest.h>

#include "core/ops.h"
#include "support/check.h"

namespace cw {
namespace {

// cublasGemm(StridedBatched)Ex semantics, alpha = 1, beta = 0: column-major
// C[r + j*ldc] = sum_l op1(r, l) * op2(l, j), op(X)(r, l) = trans ? X[l + r*ld] : X[r + l*ld].
Tensor run_plan(const cuda::GemmPlan& p, const Shape& out_shape) {
  Tensor out = ops::full(out_shape, -999.0, DType::F64);
  const double* A = p.first.data<double>();
  const double* B = p.second.data<double>();
  double* C = out.data<double>();
  for (int64_t i = 0; i < p.batch; ++i) {
    const int64_t oa = p.strided ? p.off_first[0] + i * p.stride_first : p.off_first[i];
    const int64_t ob = p.strided ? p.off_second[0] + i * p.stride_second : p.off_second[i];
    const double* a0 = A + oa;
    const double* b0 = B + ob;
    double* c0 = C + i * p.m * p.n;
    for (int64_t j = 0; j < p.n; ++j)
      for (int64_t r = 0; r < p.m; ++r) {
        double s = 0;
        for (int64_t l = 0; l < p.k; ++l) {
          const double x = p.trans_first ? a0[l + r * p.ld_first] : a0[r + l * p.ld_first];
          const double y = p.trans_second ? b0[j + l * p.ld_second] : b0[l + j * p.ld_second];
          s += x * y;
        }
        c0[r + j * p.ldc] = s;
      }
  }
  return out;
}

// What ops::matmul hands the backend in its general path: both operands expanded to the
// broadcast batch shape.
void check(const Tensor& a_in, const Tensor& b_in, const char* what) {
  const Tensor want = ops::matmul(a_in, b_in);
  const Shape a_batch(a_in.shape().begin(), a_in.shape().end() - 2),
      b_batch(b_in.shape().begin(), b_in.shape().end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch, "test");
  Shape ea = batch, eb = batch, eo = batch;
  const int64_t M = a_in.size(-2), K = a_in.size(-1), N = b_in.size(-1);
  ea.insert(ea.end(), {M, K});
  eb.insert(eb.end(), {K, N});
  eo.insert(eo.end(), {M, N});
  const Tensor a = a_in.expand(ea), b = b_in.expand(eb);
  const Tensor out = ops::empty(eo, DType::F64);
  const cuda::GemmPlan p = cuda::plan_gemm(a, b, out);
  // cuBLAS's bounds (else CUBLAS_STATUS_INVALID_VALUE): lda >= rows of the stored matrix.
  EXPECT_GE(p.ld_first, std::max<int64_t>(1, p.trans_first ? p.k : p.m)) << what;
  EXPECT_GE(p.ld_second, std::max<int64_t>(1, p.trans_second ? p.n : p.k)) << what;
  EXPECT_EQ(p.ldc, p.m) << what;
  EXPECT_TRUE(test::all_close(run_plan(p, eo), want.reshape(eo), 1e-12, 1e-12)) << what;
}

TEST(CudaGemmPlan, MatchesCpuMatmulForEveryLayout) {
  using test::rand64;
  check(rand64({17, 33}), rand64({33, 9}, -1, 1, 2), "row-major");
  check(rand64({33, 17}).t(), rand64({33, 9}, -1, 1, 2), "a transposed");
  check(rand64({17, 33}), rand64({9, 33}, -1, 1, 2).t(), "b transposed");
  check(rand64({33, 17}).t(), rand64({9, 33}, -1, 1, 2).t(), "both transposed");
  check(rand64({17, 40}).narrow(1, 3, 33), rand64({33, 12}, -1, 1, 2).narrow(1, 0, 9), "leading dims > cols");
  check(rand64({5, 7, 8}), rand64({5, 8, 6}, -1, 1, 2), "strided batch");
  check(rand64({7, 8}), rand64({5, 8, 6}, -1, 1, 2), "broadcast a (stride 0)");
  check(rand64({5, 7, 8}), rand64({8, 6}, -1, 1, 2), "broadcast b (stride 0)");
  check(rand64({2, 1, 7, 8}), rand64({1, 3, 8, 6}, -1, 1, 2), "batch offsets not equally spaced");
  check(rand64({5, 8, 7}).transpose(1, 2), rand64({5, 6, 8}, -1, 1, 2).transpose(1, 2), "batched transposes");
  check(rand64({2, 5, 3, 4}).permute({0, 2, 1, 3}), rand64({2, 5, 3, 4}, -1, 1, 2).permute({0, 2, 3, 1}),
        "attention heads (permuted views)");
  check(rand64({1, 8}), rand64({8, 6}, -1, 1, 2), "one row");
  check(rand64({7, 8}), rand64({8, 1}, -1, 1, 2), "one column");
  check(rand64({7, 1}), rand64({1, 6}, -1, 1, 2), "outer product (K = 1)");
  check(rand64({6, 8}).slice(0, 0, 6, 2), rand64({8, 6}, -1, 1, 2).slice(1, 0, 6, 3),
        "stepped rows and columns");
  // Neither layout fits (both strides > 1): the plan copies that operand.
  const Tensor odd = rand64({12, 20}).slice(0, 0, 12, 2).slice(1, 0, 20, 2);  // (6, 10), strides (40, 2)
  check(odd, rand64({10, 4}, -1, 1, 2), "operand copied");
}

}  // namespace
}  // namespace cw
