// The contrastive losses' forward + backward on the GPU: InfoNCE and CWCL (the paper's linear
// weights, both directions, mean) in the setting of bench/bench_losses.cpp: p (N, 384) requires
// grad, q frozen, a learnable log scale, f32. One line per (loss, N): the median of 10 timed
// steps after 2 warm-up steps (the device synchronized around each), and the peak of device
// bytes allocated during a step above the inputs. torch_loss_bench.py prints the same lines for
// PyTorch's usual composition on the same GPU. Built only by tools/gpu_check/CMakeLists.txt.
// CW_GPU_CHECK_ON_CPU=1 runs it on the CPU (a rehearsal of the program, not a measurement).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/ops.h"
#include "cuda/cuda.h"
#include "losses/contrastive_loss.h"
#include "tools/gpu_check/bench_timing.h"

using namespace cw;

int main(int argc, char** argv) {
  cuda::init();
  const bool on_cpu = gpu_check::rehearsal_on_cpu();
  if (!on_cpu && !cuda::is_available()) {
    std::printf("no CUDA device\n");
    return 77;
  }
  const Device dev = on_cpu ? Device::cpu() : Device::cuda(0);
  std::vector<int64_t> sizes = {256, 1024, 4096, 16384};
  if (argc > 1) {
    sizes.clear();
    for (int i = 1; i < argc; ++i) sizes.push_back(std::atoll(argv[i]));
  }
  for (const char* name : {"infonce", "cwcl"}) {
    for (const int64_t n : sizes) {
      losses::ContrastiveConfig cfg;
      cfg.loss = std::string(name) == "cwcl" ? losses::LossKind::CWCL : losses::LossKind::InfoNCE;
      Generator g(42);
      const Tensor p = ops::randn({n, 384}, DType::F32, g);
      const Tensor q = ops::add(p, ops::randn({n, 384}, DType::F32, g)).to(dev);  // correlated pairs
      Variable zp(p.to(dev), true), t(ops::scalar(std::log(1 / 0.07)).to(dev), true);
      auto step = [&] {
        zp.zero_grad();
        t.zero_grad();
        losses::contrastive_loss(zp, Variable(q), t, cfg).loss.backward();
      };
      if (!on_cpu) cuda::reset_peak_memory_stats(0);
      const size_t base = on_cpu ? 0 : cuda::memory_stats(0).allocated;
      const double ms = gpu_check::median_ms(step, 2, 10, !on_cpu);
      const double peak = on_cpu ? 0.0 : static_cast<double>(cuda::memory_stats(0).peak_allocated - base);
      std::printf("ours  %-8s N=%-6lld %9.3f ms  peak %8.1f MiB  (one N x N f32: %.1f MiB)\n", name,
                  static_cast<long long>(n), ms, peak / 1048576.0,
                  static_cast<double>(n) * static_cast<double>(n) * 4 / 1048576.0);
    }
  }
  return 0;
}
