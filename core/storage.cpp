// CPU allocator and the allocator registry (see storage.h).
#include "core/storage.h"

#include <array>
#include <cstdlib>
#include <new>

#include "core/error.h"

namespace cw {
namespace {

std::shared_ptr<Storage> cpu_allocate(size_t nbytes, Device device) {
  // aligned_alloc needs a size that is a multiple of the alignment; a zero-byte tensor still
  // gets a valid (one-line) block so that data pointers are never null.
  const size_t padded = ((nbytes + kCpuAlignment - 1) / kCpuAlignment) * kCpuAlignment;
  void* p = std::aligned_alloc(kCpuAlignment, padded == 0 ? kCpuAlignment : padded);
  if (!p) throw std::bad_alloc();
  return std::make_shared<Storage>(p, nbytes, device, [](void* q) { std::free(q); });
}

std::array<AllocatorFn, kNumDeviceTypes>& registry() {
  static std::array<AllocatorFn, kNumDeviceTypes> r = {cpu_allocate, nullptr};
  return r;
}

}  // namespace

void register_allocator(DeviceType type, AllocatorFn fn) {
  registry()[static_cast<size_t>(type)] = std::move(fn);
}

std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device device) {
  const auto& fn = registry()[static_cast<size_t>(device.type)];
  CW_CHECK(fn != nullptr, DeviceError, "allocate: no allocator for device ", device.str(),
           " (this build has no backend for it)");
  return fn(nbytes, device);
}

}  // namespace cw
