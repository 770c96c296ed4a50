// Device guard, device queries, TF32 switch and cuBLAS / cuDNN handles (see context.h and cuda.h).
#include "cuda/context.h"

#include <array>
#include <atomic>
#include <mutex>

#include "cuda/cuda.h"
#include "cuda/cuda_error.h"

namespace cw::cuda {

DeviceGuard::DeviceGuard(Device device) : DeviceGuard(device.index) {}

DeviceGuard::DeviceGuard(int index) {
  CW_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != index) CW_CUDA_CHECK(cudaSetDevice(index));
}

DeviceGuard::~DeviceGuard() {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_ && previous_ >= 0)
    (void)cudaSetDevice(previous_);
}

int device_count() {
  int n = 0;
  // No driver, no device, or a driver too old for this runtime: all mean "no usable GPU".
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

void synchronize(int device) {
  if (device >= 0) {
    DeviceGuard g(device);
    CW_CUDA_CHECK(cudaDeviceSynchronize());
    return;
  }
  for (int d = 0; d < device_count(); ++d) synchronize(d);
}

namespace {
std::atomic<bool> g_allow_tf32{false};
constexpr int kMaxDevices = 64;
}  // namespace

void set_allow_tf32(bool on) { g_allow_tf32 = on; }
bool allow_tf32() { return g_allow_tf32; }

cublasHandle_t cublas_handle(int device) {
  static std::mutex mu;
  static std::array<cublasHandle_t, kMaxDevices> handles{};
  CW_CHECK(device >= 0 && device < kMaxDevices, DeviceError, "cuBLAS: device index ", device,
           " out of range");
  std::lock_guard<std::mutex> lock(mu);
  if (!handles[device]) {
    DeviceGuard g(device);
    CW_CUBLAS_CHECK(cublasCreate(&handles[device]));
    CW_CUBLAS_CHECK(cublasSetStream(handles[device], stream()));
  }
  return handles[device];
}

#ifdef CW_HAVE_CUDNN
cudnnHandle_t cudnn_handle(int device) {
  static std::mutex mu;
  static std::array<cudnnHandle_t, kMaxDevices> handles{};
  CW_CHECK(device >= 0 && device < kMaxDevices, DeviceError, "cuDNN: device index ", device, " out of range");
  std::lock_guard<std::mutex> lock(mu);
  if (!handles[device]) {
    DeviceGuard g(device);
    CW_CUDNN_CHECK(cudnnCreate(&handles[device]));
    CW_CUDNN_CHECK(cudnnSetStream(handles[device], stream()));
  }
  return handles[device];
}
#endif

}  // namespace cw::cuda
