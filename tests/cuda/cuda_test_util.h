// Shared pieces of the CUDA tests: the fixture that skips without a GPU, and parity checks that
// run one function on CPU tensors and on the same tensors copied to cuda:0, forward (outputs)
// and backward (gradients of sum(out * w) for a fixed random w, through autograd).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "core/ops.h"
#include "cuda/cuda.h"
#include "support/check.h"
#include "support/emulated_device.h"

namespace cw::test {

// CW_CUDA_TESTS_ON_CPU=1 runs the parity tests with their "device" side on an emulated cuda:0
// (emulated_device.h: host memory and the CPU kernels under device rules): a dry run of the
// tests' own code (shapes, index ranges, API use) and of the code around the kernels (host reads
// of device tensors, device mismatches) on machines without a GPU, so that a GPU session's few
// minutes are not spent on a broken test. It proves nothing about the kernels; the memory tests
// (which need the CUDA allocator) skip in it.
inline bool dry_run_on_cpu() { return device_dry_run(); }

inline Device gpu() { return Device::cuda(0); }

// Every test that needs a device derives from this; without one it skips with the reason.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cuda::init();
    if (dry_run_on_cpu()) {
      if (needs_cuda_allocator()) GTEST_SKIP() << "dry run on the CPU: this test needs the CUDA allocator";
      install_emulated_cuda();
      return;
    }
    if (!cuda::is_available())
      GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports 0): CUDA test skipped; "
                      "tools/gpu_check.sh runs it on a GPU machine";
  }
  virtual bool needs_cuda_allocator() const { return false; }
};

// Random tensor in [lo, hi) from a seed (CPU).
inline Tensor rnd(const Shape& shape, DType dt = DType::F32, double lo = -1, double hi = 1,
                  uint64_t seed = 7) {
  Generator g(seed);
  return ops::uniform(shape, lo, hi, dt, g);
}

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;
using VarFn = std::function<Variable(const std::vector<Variable>&)>;

// Forward parity: f on the CPU inputs vs f on their CUDA copies, |cuda - cpu| <= atol + rtol|cpu|.
inline ::testing::AssertionResult forward_parity(const TensorFn& f, const std::vector<Tensor>& inputs,
                                                 double atol, double rtol) {
  std::vector<Tensor> dev;
  for (const Tensor& t : inputs) dev.push_back(t.to(gpu()));
  const Tensor want = f(inputs);
  const Tensor got = f(dev);
  if (got.device() != gpu()) return ::testing::AssertionFailure() << "result is on " << got.device().str();
  return all_close(got.to(Device::cpu()), want, atol, rtol);
}

// Forward and backward parity through autograd: every floating input requires grad; the output
// is reduced with fixed random weights so each gradient element is distinct.
inline ::testing::AssertionResult grad_parity(const VarFn& f, const std::vector<Tensor>& inputs, double atol,
                                              double rtol) {
  auto run = [&](Device d, std::vector<Tensor>& grads) {
    std::vector<Variable> vars;
    for (const Tensor& t : inputs) vars.emplace_back(t.to(d), is_floating(t.dtype()));
    const Variable out = f(vars);
    const Tensor w = rnd(out.shape(), out.dtype(), -1, 1, 99).to(d);
    ag::sum(ag::mul(out, Variable(w))).backward();
    for (const Variable& v : vars) grads.push_back(v.requires_grad() ? v.grad().to(Device::cpu()) : Tensor());
    return out.data().to(Device::cpu());
  };
  std::vector<Tensor> g_cpu, g_gpu;
  const Tensor y_cpu = run(Device::cpu(), g_cpu);
  const Tensor y_gpu = run(gpu(), g_gpu);
  auto r = all_close(y_gpu, y_cpu, atol, rtol);
  if (!r) return r << " (forward)";
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!g_cpu[i].defined()) continue;
    if (!g_gpu[i].defined()) return ::testing::AssertionFailure() << "no gradient on cuda for input " << i;
    r = all_close(g_gpu[i], g_cpu[i], atol, rtol);
    if (!r) return r << " (gradient of input " << i << ")";
  }
  return ::testing::AssertionSuccess();
}

// Tolerances. f32 kernels differ from the CPU's in summation order and in the last ulps of
// transcendental functions; f64 ones agree to ~1e-15 except through long sums.
constexpr double kAtol32 = 1e-5, kRtol32 = 1e-5;
constexpr double kAtol64 = 1e-12, kRtol64 = 1e-11;
inline double atol_for(DType t) { return t == DType::F32 ? kAtol32 : kAtol64; }
inline double rtol_for(DType t) { return t == DType::F32 ? kRtol32 : kRtol64; }

}  // namespace cw::test
