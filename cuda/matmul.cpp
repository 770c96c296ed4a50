// CUDA (batched) matmul on cuBLAS, following the plan of gemm_plan.h: no operand is copied to
// change layout (x @ W.t() reads W in place), equally spaced batches (contiguous, or broadcast
// with stride 0) are one cublasGemmStridedBatchedEx, other batch layouts loop over
// cublasGemmEx. f32 runs in full f32 (CUBLAS_COMPUTE_32F) unless TF32 is switched on (cuda.h);
// f64 in f64.
#include <climits>

#include "cuda/context.h"
#include "cuda/cuda.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_error.h"
#include "cuda/gemm_plan.h"

namespace cw::cuda {
namespace {

int as_int(int64_t v, const char* what) {
  CW_CHECK(v >= 0 && v <= INT_MAX, NotImplementedError, "matmul: ", what, " ", v,
           " exceeds cuBLAS's 32-bit sizes");
  return static_cast<int>(v);
}

}  // namespace

void CudaBackend::matmul(const Tensor& a, const Tensor& b, Tensor& out, bool accumulate) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  if (M == 0 || N == 0 || out.numel() == 0) return;
  if (K == 0) {
    if (!accumulate) fill(out, 0.0);
    return;
  }
  CW_CHECK(out.dtype() == DType::F32 || out.dtype() == DType::F64, DTypeError, "matmul: dtype ",
           dtype_name(out.dtype()), " is not supported on cuda");
  DeviceGuard guard(out.device());
  const GemmPlan p = plan_gemm(a, b, out);
  const bool f32 = out.dtype() == DType::F32;
  const size_t es = dtype_size(out.dtype());
  cublasHandle_t h = cublas_handle(out.device().index);
  const cublasOperation_t op1 = p.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op2 = p.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = as_int(p.m, "N"), n = as_int(p.n, "M"), k = as_int(p.k, "K");
  const int ld1 = as_int(p.ld_first, "leading dimension"), ld2 = as_int(p.ld_second, "leading dimension");
  const cudaDataType_t type = f32 ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t compute =
      f32 ? (allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F) : CUBLAS_COMPUTE_64F;
  const float one_f = 1.0f, zero_f = 0.0f;
  const double one_d = 1.0, zero_d = 0.0;
  const void* alpha = f32 ? static_cast<const void*>(&one_f) : static_cast<const void*>(&one_d);
  // accumulate: beta = 1, cuBLAS adds the product onto out.
  const void* beta = accumulate
                         ? (f32 ? static_cast<const void*>(&one_f) : static_cast<const void*>(&one_d))
                         : (f32 ? static_cast<const void*>(&zero_f) : static_cast<const void*>(&zero_d));
  const char* p1 = static_cast<const char*>(p.first.raw_data());
  const char* p2 = static_cast<const char*>(p.second.raw_data());
  char* pc = static_cast<char*>(out.raw_data());
  if (p.strided) {
    CW_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, op1, op2, m, n, k, alpha, p1 + p.off_first[0] * es, type,
                                               ld1, p.stride_first, p2 + p.off_second[0] * es, type, ld2,
                                               p.stride_second, beta, pc, type, m, M * N,
                                               as_int(p.batch, "batch count"), compute, CUBLAS_GEMM_DEFAULT));
    return;
  }
  for (int64_t i = 0; i < p.batch; ++i)
    CW_CUBLAS_CHECK(cublasGemmEx(h, op1, op2, m, n, k, alpha, p1 + p.off_first[i] * es, type, ld1,
                                 p2 + p.off_second[i] * es, type, ld2, beta, pc + i * M * N * es, type, m,
                                 compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace cw::cuda
