// The caching device allocator: cudaMalloc is slow and synchronizes the device, so blocks are
// never given back on free. A freed block goes to its device's free list for its size class and
// serves the next request of that class. Classes are 512-byte multiples below 4 KiB and then
// four per power of two (2^k, 1.25, 1.5, 1.75 x 2^k), so a block is at most 25% larger than
// asked and a training step, which repeats the same sizes, stops calling cudaMalloc after its
// first iteration. On cudaMalloc failure the device's cache is released and the call retried.
// Safe without events because all work runs on one stream (see context.h). Part of cuda/.
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/storage.h"
#include "cuda/context.h"
#include "cuda/cuda.h"
#include "cuda/cuda_error.h"

namespace cw::cuda {

size_t allocation_size_class(size_t nbytes) {
  constexpr size_t kMin = 512, kLinearUpTo = 4096;
  if (nbytes <= kLinearUpTo) return nbytes == 0 ? kMin : (nbytes + kMin - 1) / kMin * kMin;
  size_t pow2 = kLinearUpTo;
  while (pow2 * 2 <= nbytes) pow2 *= 2;  // pow2 <= nbytes < 2 * pow2
  const size_t quarter = pow2 / 4;
  return (nbytes + quarter - 1) / quarter * quarter;
}

namespace {

class CachingAllocator {
 public:
  static CachingAllocator& instance() {
    // Leaked on purpose: tensors destroyed during static destruction still return blocks here,
    // and cudaFree after the driver shut down would fail.
    static auto* a = new CachingAllocator;
    return *a;
  }

  std::shared_ptr<Storage> allocate(size_t nbytes, Device device) {
    const int dev = device.index;
    static const int count = device_count();
    CW_CHECK(dev >= 0 && dev < count, DeviceError, "allocate: ", device.str(),
             " requested but this machine has ", count, " usable CUDA device(s)");
    const size_t cls = allocation_size_class(nbytes);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      PerDevice& d = at(dev);
      auto it = d.free.find(cls);
      if (it != d.free.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        ++d.stats.cache_hits;
        d.cached -= cls;
      }
    }
    if (!p) p = device_malloc(dev, cls, nbytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      MemoryStats& s = at(dev).stats;
      s.allocated += cls;
      s.peak_allocated = std::max(s.peak_allocated, s.allocated);
    }
    return std::make_shared<Storage>(p, nbytes, device,
                                     [dev, cls](void* q) { instance().release(dev, q, cls); });
  }

  void release(int dev, void* p, size_t cls) {
    std::lock_guard<std::mutex> lock(mu_);
    PerDevice& d = at(dev);
    d.free[cls].push_back(p);
    d.cached += cls;
    d.stats.allocated -= cls;
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t dev = 0; dev < devices_.size(); ++dev) free_cached(static_cast<int>(dev));
  }

  MemoryStats stats(int dev) {
    std::lock_guard<std::mutex> lock(mu_);
    return at(dev).stats;
  }

  void reset_peak(int dev) {
    std::lock_guard<std::mutex> lock(mu_);
    MemoryStats& s = at(dev).stats;
    s.peak_allocated = s.allocated;
    s.peak_reserved = s.reserved;
  }

 private:
  struct PerDevice {
    std::unordered_map<size_t, std::vector<void*>> free;  // size class -> free blocks
    size_t cached = 0;                                    // bytes in the free lists
    MemoryStats stats;
  };

  PerDevice& at(int dev) {
    if (static_cast<size_t>(dev) >= devices_.size()) devices_.resize(dev + 1);
    return devices_[dev];
  }

  // Frees every cached block of a device (mu_ held). cudaFree synchronizes the device, so no
  // queued kernel can still be using a block.
  void free_cached(int dev) {
    PerDevice& d = at(dev);
    if (d.free.empty()) return;
    DeviceGuard g(dev);
    for (auto& [cls, blocks] : d.free) {
      for (void* p : blocks) CW_CUDA_CHECK(cudaFree(p));
      d.stats.reserved -= cls * blocks.size();
    }
    d.free.clear();
    d.cached = 0;
  }

  void* device_malloc(int dev, size_t cls, size_t nbytes) {
    DeviceGuard g(dev);
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, cls);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      std::lock_guard<std::mutex> lock(mu_);
      free_cached(dev);
      e = cudaMalloc(&p, cls);
    }
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      const MemoryStats s = stats(dev);
      throw DeviceError(::cw::detail::cat("allocate: cannot allocate ", nbytes, " bytes on cuda:", dev, ": ",
                                          cudaGetErrorName(e), " (", cudaGetErrorString(e), "); ",
                                          s.allocated, " bytes in live tensors, ", s.reserved, " reserved"));
    }
    std::lock_guard<std::mutex> lock(mu_);
    MemoryStats& s = at(dev).stats;
    s.reserved += cls;
    s.peak_reserved = std::max(s.peak_reserved, s.reserved);
    ++s.device_mallocs;
    return p;
  }

  std::mutex mu_;
  std::vector<PerDevice> devices_;
};

}  // namespace

std::shared_ptr<Storage> allocate_cuda_storage(size_t nbytes, Device device) {
  return CachingAllocator::instance().allocate(nbytes, device);
}

MemoryStats memory_stats(int device) { return CachingAllocator::instance().stats(device); }
void reset_peak_memory_stats(int device) { CachingAllocator::instance().reset_peak(device); }
void empty_cache() { CachingAllocator::instance().empty_cache(); }

}  // namespace cw::cuda
