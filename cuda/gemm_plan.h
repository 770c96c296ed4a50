// How a row-major batched product out = a @ b maps onto one cuBLAS column-major GEMM call (or a
// loop of them): operand order, transpose flags, leading dimensions, batch strides. Host code,
// separate from matmul.cpp so that tests/cuda/kernel_math_test.cpp can run the plan through a
// reference column-major GEMM on the CPU, without a GPU. Internal to cuda/.
//
// cuBLAS is column-major; row-major C (M, N) is column-major C^T (N, M) with ldc = N, and
// C^T = B^T A^T, so cuBLAS's first operand is our b and its second our a. A row-major matrix
// read column-major is its transpose (op N gives the transpose we need); a column-major one
// (transposed in memory) needs op T. Each operand is read in place when either layout fits.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace cw::cuda {

struct GemmPlan {
  Tensor first, second;            // the operands cuBLAS reads: b and a (contiguous copies if needed)
  bool trans_first, trans_second;  // CUBLAS_OP_T when true
  int64_t m, n, k;                 // N, M, K
  int64_t ld_first, ld_second, ldc;
  int64_t batch;
  std::vector<int64_t> off_first, off_second;  // element offset of each batch's matrix
  bool strided;                                // offsets equally spaced: one strided-batched call
  int64_t stride_first, stride_second;         // the spacing when strided (0 = broadcast)
};

// a (..., M, K), b (..., K, N) expanded to out's batch shape; out (..., M, N) contiguous.
GemmPlan plan_gemm(const Tensor& a, const Tensor& b, const Tensor& out);

}  // namespace cw::cuda
