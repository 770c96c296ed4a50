// Fused normalization kernels on transformer shapes: softmax over the last dim of the hidden
// states (2048, 384) and of attention scores (96, 128, 128), forward and backward, and layer
// norm with weight and bias on (2048, 384), forward and forward+backward.
#include "bench_util.h"
#include "core/ops.h"

namespace cw::bench {
namespace {

constexpr int64_t kF32 = 4;

Shape softmax_shape(int64_t which) {
  return which == 0 ? Shape{kTokens, kModel} : Shape{kAttnBatch, kSeq, kSeq};
}

// Arg 0: (2048, 384); arg 1: attention scores (96, 128, 128).
void BM_softmax(benchmark::State& state) {
  const Tensor x = ops::randn(softmax_shape(state.range(0)));
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::softmax(x, -1));
  set_bytes(state, 2 * x.numel() * kF32);
}

// Backward alone, given y = softmax(x) and an upstream gradient.
void BM_softmax_backward(benchmark::State& state) {
  const Tensor x = ops::randn(softmax_shape(state.range(0)));
  const Tensor y = ops::softmax(x, -1), gy = ops::randn(x.shape());
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::softmax_backward(y, gy, -1, false));
  set_bytes(state, 3 * x.numel() * kF32);
}

void BM_layer_norm(benchmark::State& state) {
  const Tensor x = ops::randn({kTokens, kModel});
  const Tensor w = ops::randn({kModel}), b = ops::randn({kModel});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::layer_norm(x, 1, w, b).y);
  set_bytes(state, 2 * x.numel() * kF32);
}

// Forward, then the backward of x, weight and bias (as in training).
void BM_layer_norm_fwd_bwd(benchmark::State& state) {
  const Tensor x = ops::randn({kTokens, kModel});
  const Tensor w = ops::randn({kModel}), b = ops::randn({kModel}), gy = ops::randn({kTokens, kModel});
  FaultCounter faults(state);
  for (auto _ : state) {
    const ops::LayerNormOutput o = ops::layer_norm(x, 1, w, b);
    const ops::LayerNormGrads g = ops::layer_norm_backward(gy, x, 1, o.mean, o.rstd, w, true, true);
    keep(o.y);
    keep(g.x);
    keep(g.weight);
  }
  set_bytes(state, 5 * x.numel() * kF32);
}

}  // namespace

BENCHMARK(BM_softmax)->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_softmax_backward)->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_layer_norm)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_layer_norm_fwd_bwd)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace cw::bench
