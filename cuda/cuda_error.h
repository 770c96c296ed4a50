// Error checks for the CUDA runtime, cuBLAS and cuDNN: every call goes through one of these
// macros, which throw cw::DeviceError naming the call, its status and where it was made.
// Kernel launches are checked with CW_CUDA_CHECK_LAUNCH("kernel name"). Part of cuda/.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#ifdef CW_HAVE_CUDNN
#include <cudnn.h>
#endif

#include "core/error.h"

namespace cw::cuda::detail {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) throw_cuda_error(status, call, file, line);
}
inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, call, file, line);
}

#ifdef CW_HAVE_CUDNN
[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line);
inline void check_cudnn(cudnnStatus_t status, const char* call, const char* file, int line) {
  if (status != CUDNN_STATUS_SUCCESS) throw_cudnn_error(status, call, file, line);
}
#endif

}  // namespace cw::cuda::detail

#define CW_CUDA_CHECK(call) ::cw::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__)
#define CW_CUBLAS_CHECK(call) ::cw::cuda::detail::check_cublas((call), #call, __FILE__, __LINE__)
#ifdef CW_HAVE_CUDNN
#define CW_CUDNN_CHECK(call) ::cw::cuda::detail::check_cudnn((call), #call, __FILE__, __LINE__)
#endif
// After a <<<...>>> launch: a bad configuration shows up here, named by the kernel.
#define CW_CUDA_CHECK_LAUNCH(kernel) \
  ::cw::cuda::detail::check_cuda(cudaGetLastError(), "launch of " kernel, __FILE__, __LINE__)
