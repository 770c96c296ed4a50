// select_device (see device_select.h).
#include "train/device_select.h"

#include <cstdio>

#include "core/backend.h"
#include "core/error.h"

#ifdef CW_HAVE_CUDA
#include "cuda/cuda.h"
#endif

namespace cw::train {

bool built_with_cuda() {
#ifdef CW_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

Device parse_device(const std::string& spec) {
  if (spec == "cpu") return Device::cpu();
  if (spec == "cuda") return Device::cuda(0);
  CW_CHECK(spec.rfind("cuda:", 0) == 0 && spec.size() > 5 && spec.size() < 10 &&
               spec.find_first_not_of("0123456789", 5) == std::string::npos,
           OptionError, "--run.device must be cpu, cuda or cuda:N, got '", spec, "'");
  return Device::cuda(std::stoi(spec.substr(5)));
}

Device select_device(const std::string& spec) {
  const Device device = parse_device(spec);
  if (device.is_cpu()) return device;
#ifdef CW_HAVE_CUDA
  cuda::init();
#endif
  // Core's registries, not the CUDA runtime: what serves the device is whatever registered
  // itself (the CUDA backend, or the tests' emulated device).
  CW_CHECK(has_backend(device.type), DeviceError, "--run.device ", spec,
           ": this build has no CUDA backend (configure with -DCW_CUDA=ON where nvcc is installed); use cpu");
  const int count = device_count(device.type);
  CW_CHECK(device.index < count, DeviceError, "--run.device ", spec, ": this machine has ", count,
           " CUDA device(s) visible (none: no GPU or no driver)");
  return device;
}

void parse_conv_engine(const std::string& spec) {
  CW_CHECK(spec == "auto" || spec == "cudnn" || spec == "native", OptionError,
           "--run.conv must be auto, cudnn or native, got '", spec, "'");
}

void apply_cuda_options(Device device, const std::string& spec, bool tf32) {
  parse_conv_engine(spec);
  if (!device.is_cuda()) return;
#ifdef CW_HAVE_CUDA
  CW_CHECK(
      spec != "cudnn" || cuda::built_with_cudnn(), DeviceError,
      "--run.conv cudnn: this build has no cuDNN (CMake found none; configure with CUDNN_ROOT set to its "
      "prefix); use auto or native");
  cuda::ConvEngine engine = cuda::ConvEngine::Auto;
  cuda::conv_engine_from_name(spec, &engine);  // the spelling was checked above
  cuda::set_conv_engine(engine);
  cuda::set_allow_tf32(tf32);
#else
  (void)tf32;
#endif
}

std::string device_memory_line(Device device) {
  if (!device.is_cuda()) return "";
#ifdef CW_HAVE_CUDA
  const cuda::MemoryStats m = cuda::memory_stats(device.index);
  char line[256];
  std::snprintf(line, sizeof line,
                "device %s: peak allocated %.1f MiB, peak reserved %.1f MiB, %llu cudaMalloc calls, %llu "
                "allocations from the cache\n",
                device.str().c_str(), static_cast<double>(m.peak_allocated) / 1048576.0,
                static_cast<double>(m.peak_reserved) / 1048576.0,
                static_cast<unsigned long long>(m.device_mallocs),
                static_cast<unsigned long long>(m.cache_hits));
  return line;
#else
  return "";
#endif
}

}  // namespace cw::train
