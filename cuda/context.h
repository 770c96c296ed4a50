// Per-device state of the CUDA backend: the current-device guard, the stream all work is queued
// on, and the cuBLAS and cuDNN handles. Internal to cuda/.
//
// One stream: every kernel, GEMM and copy goes to the legacy default stream, so all work on a
// device runs in issue order. That is what makes the caching allocator safe without events: a
// block freed on the host may be handed to the next op at once, because that op runs after
// every op that used the block. (More streams would need per-block stream bookkeeping.)
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/device.h"
#include "cuda/cuda_error.h"  // cudnn.h where built with cuDNN

namespace cw::cuda {

// Makes `device` current for the scope and restores the previous device after it.
class DeviceGuard {
 public:
  explicit DeviceGuard(Device device);
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// The legacy default stream (handle 0: nothing here is built with --default-stream per-thread),
// the stream that cudaMemcpy and every library default to, so all of them stay ordered.
inline cudaStream_t stream() { return nullptr; }

// The cuBLAS handle of a device (created on first use, bound to stream()). Never destroyed: a
// handle destroyed after the driver has shut down at exit would crash.
cublasHandle_t cublas_handle(int device);

#ifdef CW_HAVE_CUDNN
// The cuDNN handle of a device, likewise (created on first use, bound to stream(), never
// destroyed).
cudnnHandle_t cudnn_handle(int device);
#endif

}  // namespace cw::cuda
