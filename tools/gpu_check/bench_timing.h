// What the GPU check's benchmark programs share (cuda_ops_bench, loss_bench, conv_bench): the
// CPU-rehearsal switch and the timing rule, the median wall time of repeated calls with the device
// synchronized around each, so that every program's lines mean the same. Built only by
// tools/gpu_check/CMakeLists.txt.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <vector>

#include "cuda/cuda.h"

namespace cw::gpu_check {

// CW_GPU_CHECK_ON_CPU set: the device side runs on the CPU (a rehearsal of the program, not a
// measurement).
inline bool rehearsal_on_cpu() { return std::getenv("CW_GPU_CHECK_ON_CPU") != nullptr; }

// Median milliseconds of `iters` calls of f after `warmup` calls; with on_device, the device is
// synchronized before the first timed call and after each.
inline double median_ms(const std::function<void()>& f, int warmup, int iters, bool on_device) {
  auto sync = [&] {
    if (on_device) cuda::synchronize();
  };
  for (int i = 0; i < warmup; ++i) f();
  sync();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    sync();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace cw::gpu_check
