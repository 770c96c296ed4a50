// An emulated CUDA device for the dry runs of the device tests on machines without a GPU
// (CW_CUDA_TESTS_ON_CPU=1: tests/cuda/cuda_test_util.h, and the trainers' device tests). Tensors on cuda:0
// live in host memory and run the CPU backend's kernels, but keep their device: host reads of them (item,
// to_vector) throw as on a real device, mixing them with CPU tensors throws, and copies take the cross-device
// path. So the dry run checks the code around the kernels (the losses, Module::to, the trainers,
// the tests themselves) under device rules; it says nothing about the CUDA kernels. Test support
// only. Call cw::cuda::init() (where built) first: it is idempotent, so it cannot undo this later.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/backend.h"
#include "core/cpu/cpu_backend.h"
#include "core/storage.h"

namespace cw::test {

inline int& emulated_device_count() {
  static int count = 1;
  return count;
}

// Replaces whatever serves DeviceType::CUDA (the real backend, if cuda::init() ran) for the
// rest of the process, with `devices` devices (cuda:0 .. cuda:devices-1, all host memory).
// Idempotent.
inline void install_emulated_cuda(int devices = 1) {
  emulated_device_count() = devices;
  register_backend(DeviceType::CUDA, &cpu::cpu_backend());
  register_allocator(DeviceType::CUDA, [](size_t nbytes, Device device) {
    std::shared_ptr<Storage> host = allocate_storage(nbytes, Device::cpu());
    void* data = host->data();
    // The host block lives as long as the "device" storage that wraps it.
    return std::make_shared<Storage>(data, nbytes, device, [host](void*) mutable { host.reset(); });
  });
  register_cross_device_copy(DeviceType::CUDA, [](const Tensor& src, Tensor& dst) {
    std::memcpy(dst.raw_data(), src.raw_data(), static_cast<size_t>(src.numel()) * dtype_size(src.dtype()));
  });
  register_device_count(DeviceType::CUDA, [] { return emulated_device_count(); });
}

// CW_CUDA_TESTS_ON_CPU is set: device tests run on the emulated device instead of skipping.
inline bool device_dry_run() { return std::getenv("CW_CUDA_TESTS_ON_CPU") != nullptr; }

}  // namespace cw::test
