// The public face of the CUDA backend: registration, device queries, the TF32 and convolution
// engine switches and the caching allocator's statistics. Plain C++ (no CUDA types), so any
// layer or binary can include it. Part of cuda/, which depends on core/ only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cw::cuda {

// Registers the CUDA backend, its caching allocator and its host<->device copy with core/.
// Call it once before the first CUDA tensor is made (more calls are no-ops). It does not touch
// a device, so it is safe on a machine without a GPU; the first allocation is what fails there.
// Why an explicit call rather than a static registrar object: a registrar in a static library
// is dropped by the linker unless something references its object file, so the backend would
// silently vanish from some binaries; one call in main() states the dependency where it is.
void init();

// Number of usable CUDA devices; 0 (never an exception) when there is no GPU or no driver.
int device_count();
inline bool is_available() { return device_count() > 0; }
// Waits for all work queued on the device (all devices when device < 0).
void synchronize(int device = -1);

// f32 matmuls may use TF32 tensor cores (10-bit mantissa inputs, f32 accumulation) when on.
// Off by default, so f32 results match the CPU to f32 rounding; the tests keep it off.
// cuDNN convolutions follow the same switch.
void set_allow_tf32(bool on);
bool allow_tf32();

// Which implementation runs convolutions on CUDA tensors:
//   Auto   - cuDNN for f32 convolutions except depthwise ones, which take our direct kernel
//            (as PyTorch does for f32 depthwise); f64 (tests only) and builds without cuDNN
//            take our kernels. The default.
//   Cudnn  - cuDNN for every convolution, depthwise and f64 included (needs a cuDNN build).
//   Native - our kernels only: im2col + cuBLAS GEMM, and the direct depthwise kernel.
// Which is faster per shape is measured by tools/gpu_check (conv_bench), not assumed.
enum class ConvEngine : uint8_t { Auto, Cudnn, Native };
// Throws DeviceError for Cudnn in a build without cuDNN.
void set_conv_engine(ConvEngine engine);
ConvEngine conv_engine();
const char* conv_engine_name(ConvEngine engine);  // "auto", "cudnn", "native"
// The engine spelled `name` (conv_engine_name's spellings); false for any other name.
bool conv_engine_from_name(const std::string& name, ConvEngine* engine);
// Whether this build links cuDNN (CMake found it; see cuda/CMakeLists.txt).
bool built_with_cudnn();

// The caching allocator, per device. `allocated` counts bytes of live tensors' blocks (rounded
// to their size class), `reserved` everything obtained from cudaMalloc (live + cached).
struct MemoryStats {
  size_t allocated = 0;
  size_t peak_allocated = 0;
  size_t reserved = 0;
  size_t peak_reserved = 0;
  uint64_t device_mallocs = 0;  // cudaMalloc calls made
  uint64_t cache_hits = 0;      // allocations served from a free list
};
MemoryStats memory_stats(int device = 0);
void reset_peak_memory_stats(int device = 0);
// Returns every cached (free) block to the driver; live tensors are untouched.
void empty_cache();
// The size class a request of nbytes is served from (exposed for tests and for reading stats).
size_t allocation_size_class(size_t nbytes);

}  // namespace cw::cuda
