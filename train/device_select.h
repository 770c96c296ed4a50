// --run.device: from its spelling ("cpu", "cuda", "cuda:N") to a Device the run can use. For a
// CUDA device this registers the CUDA backend (cw::cuda::init) and checks that the device exists,
// so that a missing GPU or a build without the backend is one clear error at start, not a failed
// allocation deep inside the first step. Part of train/.
#pragma once

#include <string>

#include "core/device.h"

namespace cw::train {

// The spelling alone (no backend, no device touched); throws ValueError naming the flag.
Device parse_device(const std::string& spec);

// parse_device, then for CUDA: registers the backend and checks the device exists. Throws
// DeviceError when the build has no CUDA backend or the machine has no such device.
Device select_device(const std::string& spec);

// --run.conv: which implementation runs convolutions on a CUDA device (cuda.h's ConvEngine):
// auto | cudnn | native. parse_conv_engine checks the spelling only (ValueError naming the flag),
// so configs are validated anywhere.
void parse_conv_engine(const std::string& spec);
// The CUDA settings of a run on `device` (nothing on the CPU): --run.conv, and --run.tf32 (f32
// matmuls and cuDNN convolutions may use TF32 tensor cores; cuda.h). Throws DeviceError for
// cudnn in a build without cuDNN.
void apply_cuda_options(Device device, const std::string& conv, bool tf32);

// For the end of a run on a CUDA device: one line with the caching allocator's peak allocated
// and reserved bytes, cudaMalloc calls and cache hits (cuda.h's MemoryStats), as PyTorch's
// max_memory_allocated / max_memory_reserved; "" on the CPU.
std::string device_memory_line(Device device);

// Whether this build has the CUDA backend (configured with CW_CUDA).
bool built_with_cuda();

}  // namespace cw::train
