// CUDA-layer tests that need no GPU, so they run on every CUDA build: the error macros'
// messages, the allocator's size classes, and the error a CUDA tensor gives on a machine without
// a device. (Philox, which the CUDA draws share with the CPU's, is core/philox.h, tested in
// tests/core/philox_test.cpp.)
#include <gtest/gtest.h>

#include "core/generator.h"
#include "core/ops.h"
#include "cuda/cuda.h"
#include "cuda/cuda_error.h"

namespace cw {
namespace {

TEST(CudaNoDevice, ErrorMacrosNameCallAndStatus) {
  try {
    CW_CUDA_CHECK(cudaErrorMemoryAllocation);
    FAIL() << "no throw";
  } catch (const DeviceError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cudaErrorMemoryAllocation"), std::string::npos) << m;
    EXPECT_NE(m.find("`cudaErrorMemoryAllocation`"), std::string::npos) << m;  // the call text
    EXPECT_NE(m.find("no_device_test.cpp"), std::string::npos) << m;
  }
  try {
    CW_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE);
    FAIL() << "no throw";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("CUBLAS_STATUS_INVALID_VALUE"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(CW_CUDA_CHECK(cudaSuccess));
  EXPECT_NO_THROW(CW_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS));
}

TEST(CudaNoDevice, SizeClassesBoundWaste) {
  EXPECT_EQ(cuda::allocation_size_class(0), 512u);
  EXPECT_EQ(cuda::allocation_size_class(1), 512u);
  EXPECT_EQ(cuda::allocation_size_class(512), 512u);
  EXPECT_EQ(cuda::allocation_size_class(513), 1024u);
  EXPECT_EQ(cuda::allocation_size_class(4096), 4096u);
  EXPECT_EQ(cuda::allocation_size_class(4097), 5120u);  // 4096 + 1024
  EXPECT_EQ(cuda::allocation_size_class(1 << 20), size_t{1} << 20);
  EXPECT_EQ(cuda::allocation_size_class((1 << 20) + 1), (size_t{1} << 20) * 5 / 4);
  size_t prev = 0;
  for (size_t n = 1; n < (size_t{1} << 26); n = n * 3 / 2 + 7) {
    const size_t c = cuda::allocation_size_class(n);
    EXPECT_GE(c, n);
    EXPECT_LE(c, n + n / 4 + 512) << n;  // at most 25% (or one 512-byte step) wasted
    EXPECT_EQ(c % 512, 0u) << n;
    EXPECT_GE(c, prev);
    prev = c;
  }
}

TEST(CudaNoDevice, InitIsIdempotentAndCountNeverThrows) {
  cuda::init();
  cuda::init();
  EXPECT_GE(cuda::device_count(), 0);
}

TEST(CudaNoDevice, CudaTensorWithoutDeviceIsANamedError) {
  cuda::init();
  if (cuda::is_available()) GTEST_SKIP() << "a CUDA device is present; this checks the no-device error";
  const Tensor x = ops::ones({2, 3});
  try {
    (void)x.to(Device::cuda(0));
    FAIL() << "no throw";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cw
