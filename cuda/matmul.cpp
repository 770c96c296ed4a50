// CUDA (batched) matmul on cuBLAS. cuBLAS is column-major; a row-major C = A @ B is computed as
// the column-major C^T = B^T @ A^T, which reads the same bytes, so no operand is ever copied to
// change layout: each operand matrix is passed with a transpose flag and leading dimension
// (row-major, or transposed = column-major, any leading dimension, as the CPU backend's
// layout_of). A batch whose operand offsets are equally spaced (contiguous batches, or one
// operand broadcast with stride 0) is one strided-batched call; any other batch layout loops.
// f32 runs in full f32 unless TF32 is switched on (cuda.h); f64 in f64.
#include <climits>
#include <vector>

#include "cuda/context.h"
#include "cuda/cuda.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_error.h"

namespace cw::cuda {
namespace {

struct MatLayout {
  bool transposed;  // false: row-major, ld = row stride; true: column-major, ld = column stride
  int64_t ld;
};

MatLayout layout_of(const Tensor& t) {
  const int64_t rows = t.size(-2), cols = t.size(-1);
  const int64_t s0 = t.stride(-2), s1 = t.stride(-1);
  if ((s1 == 1 || cols == 1) && (s0 >= std::max<int64_t>(cols, 1) || rows == 1))
    return {false, rows == 1 ? std::max<int64_t>(cols, 1) : s0};
  if ((s0 == 1 || rows == 1) && (s1 >= std::max<int64_t>(rows, 1) || cols == 1))
    return {true, cols == 1 ? std::max<int64_t>(rows, 1) : s1};
  return {false, -1};
}

// Equal spacing of a batch's offsets (stride 0 for a single batch or a broadcast operand), or
// -1 when they are not equally spaced.
int64_t uniform_stride(const std::vector<int64_t>& off) {
  if (off.size() < 2) return 0;
  const int64_t s = off[1] - off[0];
  for (size_t i = 2; i < off.size(); ++i)
    if (off[i] - off[i - 1] != s) return -1;
  return s;
}

int as_int(int64_t v, const char* what) {
  CW_CHECK(v >= 0 && v <= INT_MAX, NotImplementedError, "matmul: ", what, " ", v,
           " exceeds cuBLAS's 32-bit sizes");
  return static_cast<int>(v);
}

}  // namespace

void CudaBackend::matmul(const Tensor& a_in, const Tensor& b_in, Tensor& out) {
  const int64_t M = a_in.size(-2), K = a_in.size(-1), N = b_in.size(-1);
  if (M == 0 || N == 0 || out.numel() == 0) return;
  if (K == 0) {
    fill(out, 0.0);
    return;
  }
  DeviceGuard guard(out.device());
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
  CW_CHECK(out.dtype() == DType::F32 || out.dtype() == DType::F64, DTypeError, "matmul: dtype ",
           dtype_name(out.dtype()), " is not supported on cuda");
  const bool f32 = out.dtype() == DType::F32;
  const size_t es = dtype_size(out.dtype());
  cublasHandle_t h = cublas_handle(out.device().index);

  // Column-major C^T (N x M, ldc N) = op(B stored) @ op(A stored).
  const cublasOperation_t op_b = lb.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = la.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = as_int(N, "N"), n = as_int(M, "M"), k = as_int(K, "K");
  const int ldb_ = as_int(lb.ld, "leading dimension"), lda_ = as_int(la.ld, "leading dimension");
  const cudaDataType_t type = f32 ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t compute =
      f32 ? (allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F) : CUBLAS_COMPUTE_64F;
  const float one_f = 1.0f, zero_f = 0.0f;
  const double one_d = 1.0, zero_d = 0.0;
  const void* alpha = f32 ? static_cast<const void*>(&one_f) : static_cast<const void*>(&one_d);
  const void* beta = f32 ? static_cast<const void*>(&zero_f) : static_cast<const void*>(&zero_d);
  const char* pa = static_cast<const char*>(a.raw_data());
  const char* pb = static_cast<const char*>(b.raw_data());
  char* pc = static_cast<char*>(out.raw_data());

  const int64_t sa = uniform_stride(off_a), sb = uniform_stride(off_b);
  if (sa >= 0 && sb >= 0) {
    CW_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, op_b, op_a, m, n, k, alpha, pb + off_b[0] * es, type, ldb_, sb,
                                               pa + off_a[0] * es, type, lda_, sa, beta, pc, type, m, M * N,
                                               as_int(count, "batch count"), compute, CUBLAS_GEMM_DEFAULT));
    return;
  }
  for (int64_t i = 0; i < count; ++i)
    CW_CUBLAS_CHECK(cublasGemmEx(h, op_b, op_a, m, n, k, alpha, pb + off_b[i] * es, type, ldb_, pa + off_a[i] * es,
                                 type, lda_, beta, pc + i * M * N * es, type, m, compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace cw::cuda
