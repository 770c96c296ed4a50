// The small Conformer's four convolutions, at the training step's batch (train_step_check: 256
// utterances x 400 frames x 80 mels, d_model 144, kernel 31), under each CUDA convolution engine:
// cuDNN and ours (im2col + cuBLAS, the direct depthwise kernel). One line per (conv, engine): the
// median of 10 timed calls after 2 warm-ups (the device synchronized around each) of the forward,
// the input gradient and the weight gradient, and the peak device bytes above the inputs over
// the three. torch_conv_bench.py prints the same lines for PyTorch on the same GPU. This is the
// measurement that says which engine Auto should give each shape (cuda.h). Built only by
// tools/gpu_check/CMakeLists.txt. CW_GPU_CHECK_ON_CPU=1 rehearses it on the CPU (the lowered
// path at batch 2; no measurement).
#include <cstdio>
#include <functional>
#include <vector>

#include "core/ops.h"
#include "cuda/cuda.h"
#include "tools/gpu_check/bench_timing.h"

using namespace cw;

namespace {

struct Conv {
  const char* name;
  Shape x, w;
  ops::Conv2dOptions o;
};

}  // namespace

int main() {
  cuda::init();
  const bool on_cpu = gpu_check::rehearsal_on_cpu();
  if (!on_cpu && !cuda::is_available()) {
    std::printf("no CUDA device\n");
    return 77;
  }
  const Device dev = on_cpu ? Device::cpu() : Device::cuda(0);
  const int64_t B = on_cpu ? 2 : 256, T = 400, F = 80, D = 144, T4 = 99, K = 31;
  ops::Conv2dOptions sub;  // 3x3, stride 2, no padding (models/conformer.h)
  sub.stride = {2, 2};
  ops::Conv2dOptions dw;  // depthwise, 'same'
  dw.groups = D;
  dw.padding = {0, K / 2};
  const std::vector<Conv> convs = {
      {"subsampling conv 1 (1->144, 3x3 s2)", {B, 1, T, F}, {D, 1, 3, 3}, sub},
      {"subsampling conv 2 (144->144, 3x3 s2)", {B, D, 199, 39}, {D, D, 3, 3}, sub},
      {"pointwise conv1d (144->288)", {B, D, 1, T4}, {2 * D, D, 1, 1}, {}},
      {"depthwise conv1d (144, k31)", {B, D, 1, T4}, {D, 1, 1, K}, dw},
  };
  auto median_ms = [&](const std::function<void()>& f) { return gpu_check::median_ms(f, 2, 10, !on_cpu); };
  std::printf("cuDNN in this build: %s\n", cuda::built_with_cudnn() ? "yes" : "no");
  for (const Conv& c : convs) {
    Generator g(1);
    const Tensor x = ops::randn(c.x, DType::F32, g).to(dev), w = ops::randn(c.w, DType::F32, g).to(dev);
    const Tensor y0 = ops::conv2d(x, w, Tensor(), c.o);
    const Tensor gy = ops::randn(y0.shape(), DType::F32, g).to(dev);
    const double gflop =
        2.0 * static_cast<double>(y0.numel()) * static_cast<double>(c.w[1] * c.w[2] * c.w[3]) / 1e9;
    for (cuda::ConvEngine e : {cuda::ConvEngine::Native, cuda::ConvEngine::Cudnn}) {
      if (e == cuda::ConvEngine::Cudnn && !cuda::built_with_cudnn()) continue;
      cuda::set_conv_engine(e);
      if (!on_cpu) cuda::reset_peak_memory_stats(0);
      const size_t base = on_cpu ? 0 : cuda::memory_stats(0).allocated;
      const double fwd = median_ms([&] { (void)ops::conv2d(x, w, Tensor(), c.o); });
      const double bx = median_ms([&] { (void)ops::conv2d_backward(gy, x, w, c.o, true, false, false); });
      const double bw = median_ms([&] { (void)ops::conv2d_backward(gy, x, w, c.o, false, true, false); });
      const double peak = on_cpu ? 0.0 : static_cast<double>(cuda::memory_stats(0).peak_allocated - base);
      std::printf("ours %-6s %-38s fwd %8.3f  bwd_x %8.3f  bwd_w %8.3f ms  %6.1f TFLOP/s  peak %8.1f MiB\n",
                  cuda::conv_engine_name(e), c.name, fwd, bx, bw, 3 * gflop / (fwd + bx + bw),
                  peak / 1048576.0);
    }
  }
  cuda::set_conv_engine(cuda::ConvEngine::Auto);
  return 0;
}
