// cw::cuda::init(): plugs the CUDA backend, its caching allocator and its host<->device copy
// into core's registries (see cuda.h for why this is an explicit call).
#include <mutex>

#include "core/backend.h"
#include "core/storage.h"
#include "cuda/context.h"
#include "cuda/cuda.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_error.h"

namespace cw::cuda {
namespace {

// src and dst contiguous, same shape and dtype, on different devices. cudaMemcpy from or to
// pageable host memory is ordered after all queued work of the stream and returns when the host
// side is done with the buffer, so a device-to-host copy sees every result queued before it.
void copy_across(const Tensor& src, Tensor& dst) {
  const size_t nbytes = static_cast<size_t>(src.numel()) * dtype_size(src.dtype());
  if (nbytes == 0) return;
  const Device s = src.device(), d = dst.device();
  if (s.is_cpu() && d.is_cuda()) {
    DeviceGuard g(d);
    CW_CUDA_CHECK(cudaMemcpy(dst.raw_data(), src.raw_data(), nbytes, cudaMemcpyHostToDevice));
  } else if (s.is_cuda() && d.is_cpu()) {
    DeviceGuard g(s);
    CW_CUDA_CHECK(cudaMemcpy(dst.raw_data(), src.raw_data(), nbytes, cudaMemcpyDeviceToHost));
  } else if (s.is_cuda() && d.is_cuda()) {
    DeviceGuard g(d);
    CW_CUDA_CHECK(cudaMemcpyPeer(dst.raw_data(), d.index, src.raw_data(), s.index, nbytes));
  } else {
    throw DeviceError(::cw::detail::cat("to: no CUDA copy from ", s.str(), " to ", d.str()));
  }
}

}  // namespace

void init() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_backend(DeviceType::CUDA, &cuda_backend());
    register_allocator(DeviceType::CUDA, allocate_cuda_storage);
    register_cross_device_copy(DeviceType::CUDA, copy_across);
    register_device_count(DeviceType::CUDA, [] { return device_count(); });
  });
}

}  // namespace cw::cuda
