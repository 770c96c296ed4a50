// Storage: one owned, reference-counted block of device memory that tensors view. The CPU
// allocator hands out 64-byte-aligned blocks (one cache line, the widest AVX-512 load) so that
// Eigen maps and SIMD loops never straddle a line at the start. Part of core/.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "core/device.h"

namespace cw {

class Storage {
 public:
  using Deleter = std::function<void(void*)>;
  Storage(void* data, size_t nbytes, Device device, Deleter deleter)
      : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}
  ~Storage() {
    if (data_ && deleter_) deleter_(data_);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  Deleter deleter_;
};

// Allocates nbytes on the device through the allocator registered for its type. The CPU
// allocator is built in; the CUDA backend registers its own (a caching allocator).
std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device device);

// Where device allocators plug in (one per DeviceType).
using AllocatorFn = std::function<std::shared_ptr<Storage>(size_t nbytes, Device device)>;
void register_allocator(DeviceType type, AllocatorFn fn);

constexpr size_t kCpuAlignment = 64;

}  // namespace cw
