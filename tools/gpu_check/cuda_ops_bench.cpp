// Throughput of the CUDA backend's main kernels on the shapes a training step of the small
// Conformer / MiniLM produces, printed one line per op (median of 20 timed calls after 3 warm-up
// calls, the device synchronized around each). torch_ops_bench.py prints the same lines for
// PyTorch on the same machine. Built only by tools/gpu_check/CMakeLists.txt.
#include <cstdio>
#include <functional>

#include "core/ops.h"
#include "cuda/cuda.h"
#include "tools/gpu_check/bench_timing.h"

using namespace cw;

namespace {

double median_ms(const std::function<void()>& f) { return gpu_check::median_ms(f, 3, 20, true); }

// rate: bytes moved (GB/s) or flops (TFLOP/s), per call.
void report(const char* name, double ms, double amount, bool flops) {
  std::printf("%-34s %9.3f ms  %8.1f %s\n", name, ms, amount / (ms * 1e-3) / (flops ? 1e12 : 1e9),
              flops ? "TFLOP/s" : "GB/s");
}

Tensor randn(const Shape& s) { return ops::randn(s).to(Device::cuda(0)); }

}  // namespace

int main() {
  cuda::init();
  if (!cuda::is_available()) {
    std::printf("no CUDA device\n");
    return 77;
  }
  const double f = 4;  // bytes per f32
  {
    const Tensor a = randn({4096, 4096}), b = randn({4096, 4096});
    report("matmul 4096^3 f32", median_ms([&] { (void)ops::matmul(a, b); }), 2.0 * 4096 * 4096 * 4096, true);
    cuda::set_allow_tf32(true);
    report("matmul 4096^3 tf32", median_ms([&] { (void)ops::matmul(a, b); }), 2.0 * 4096 * 4096 * 4096, true);
    cuda::set_allow_tf32(false);
  }
  {
    const Tensor x = randn({8192, 384}), w = randn({1536, 384});  // Linear: x @ W^T
    report("linear (8192,384)@(384,1536)^T", median_ms([&] { (void)ops::matmul(x, w.t()); }),
           2.0 * 8192 * 384 * 1536, true);
    const Tensor q = randn({32, 12, 128, 32});  // attention scores per head
    report("bmm (384,128,32)@(384,32,128)", median_ms([&] { (void)ops::matmul(q, q.transpose(-1, -2)); }),
           2.0 * 384 * 128 * 128 * 32, true);
  }
  {
    const int64_t n = int64_t{1} << 26;
    const Tensor x = randn({n});
    report("gelu 64M", median_ms([&] { (void)ops::gelu(x); }), 2 * f * n, false);
    report("add 64M", median_ms([&] { (void)ops::add(x, x); }), 3 * f * n, false);
    const Tensor h = randn({65536, 1536}), bias = randn({1536});
    report("add bias (65536,1536)+(1536)", median_ms([&] { (void)ops::add(h, bias); }), 2 * f * 65536 * 1536,
           false);
    report("transpose copy (65536,1536)", median_ms([&] { (void)h.t().contiguous(); }), 2 * f * 65536 * 1536,
           false);
    report("sum dim0 (65536,1536)", median_ms([&] { (void)ops::sum(h, {0}); }), f * 65536 * 1536, false);
    report("sum all 64M", median_ms([&] { (void)ops::sum(x); }), f * n, false);
    report("softmax (65536,1536)", median_ms([&] { (void)ops::softmax(h, -1); }), 2 * f * 65536 * 1536,
           false);
  }
  {
    const Tensor x = randn({65536, 384}), w = randn({384}), b = randn({384});
    report("layer_norm (65536,384)", median_ms([&] { (void)ops::layer_norm(x, 1, w, b); }),
           2 * f * 65536 * 384, false);
    const auto ln = ops::layer_norm(x, 1, w, b);
    report("layer_norm backward (65536,384)",
           median_ms([&] { (void)ops::layer_norm_backward(x, x, 1, ln.mean, ln.rstd, w, true, true); }),
           3 * f * 65536 * 384, false);
  }
  {
    ops::Conv1dOptions o;
    o.groups = 256;
    o.padding = 15;
    const Tensor x = randn({32, 256, 1000}), w = randn({256, 1, 31});
    report("depthwise conv1d (32,256,1000) k31", median_ms([&] { (void)ops::conv1d(x, w, Tensor(), o); }),
           2.0 * 32 * 256 * 1000 * 31, true);
  }
  const auto s = cuda::memory_stats(0);
  std::printf("memory: peak allocated %.1f MiB, reserved %.1f MiB, %llu cudaMalloc calls, %llu cache hits\n",
              s.peak_allocated / 1048576.0, s.reserved / 1048576.0,
              static_cast<unsigned long long>(s.device_mallocs),
              static_cast<unsigned long long>(s.cache_hits));
  return 0;
}
