// Where the trainers' --run.device cuda tests run: a GPU when the build has the CUDA backend and
// the machine a device; in a dry run (CW_CUDA_TESTS_ON_CPU=1) the emulated device of
// tests/support/emulated_device.h, in any build. Otherwise the test skips with the reason.
#pragma once

#include <string>

#include "core/error.h"
#include "support/emulated_device.h"
#include "train/device_select.h"

namespace cw::test {

// True when the test can run on "cuda"; otherwise why_not says why (for GTEST_SKIP).
inline bool cuda_for_test(std::string& why_not) {
  if (device_dry_run()) {
    try {
      train::select_device("cuda");  // registers the real backend first where built; no GPU: throws
    } catch (const DeviceError&) {
    }
    install_emulated_cuda();
    return true;
  }
  if (!train::built_with_cuda()) {
    why_not = "built without the CUDA backend (CW_CUDA=OFF)";
    return false;
  }
  try {
    train::select_device("cuda");
  } catch (const DeviceError& e) {
    why_not = std::string("no CUDA device: ") + e.what();
    return false;
  }
  return true;
}

}  // namespace cw::test
