// CPU allocator and the allocator registry (see storage.h).
#include "core/storage.h"

#include <malloc.h>

#include <array>
#include <cstdlib>
#include <new>

#include "core/error.h"

namespace cw {
namespace {

// glibc serves blocks above M_MMAP_THRESHOLD (dynamic, 128 KiB to 32 MiB) with a fresh mmap and
// returns them with munmap on free, so every large activation of every step page-faults its
// memory in again: a (4096, 4096) f32 Linear output costs ~16k faults per call, and layer-norm
// and Linear rows ran 1.6-5x slower than PyTorch for it (BENCHMARKS.md). Serving all blocks up
// to 1 GiB from the heap, and never trimming it, recycles the same pages step after step, as a
// caching allocator would, with no code of ours to keep correct. The cost: freed memory stays
// with the process (its peak), which a training job reaches on its first step anyway.
void tune_glibc_malloc() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

std::shared_ptr<Storage> cpu_allocate(size_t nbytes, Device device) {
  static const bool tuned = (tune_glibc_malloc(), true);
  (void)tuned;
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
