// The throwing halves of the check macros (see cuda_error.h), out of line so that the checks
// themselves stay one branch at every call site.
#include "cuda/cuda_error.h"

namespace cw::cuda::detail {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  // Clear the sticky "last error" of a non-fatal failure so the next check does not report it.
  (void)cudaGetLastError();
  throw DeviceError(::cw::detail::cat("CUDA error ", cudaGetErrorName(status), " (",
                                      cudaGetErrorString(status), ") in `", call, "` at ", file, ":", line));
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw DeviceError(::cw::detail::cat("cuBLAS error ", cublasGetStatusName(status), " (",
                                      cublasGetStatusString(status), ") in `", call, "` at ", file, ":",
                                      line));
}

#ifdef CW_HAVE_CUDNN
void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line) {
  throw DeviceError(::cw::detail::cat("cuDNN error ", cudnnGetErrorString(status), " (status ",
                                      static_cast<int>(status), ") in `", call, "` at ", file, ":", line));
}
#endif

}  // namespace cw::cuda::detail
