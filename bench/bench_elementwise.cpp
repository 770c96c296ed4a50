// Elementwise ops of a transformer FFN on its hidden activations (2048, 1536) f32: GELU (exact
// erf form, as BERT) forward and backward, the bias add (a row broadcast of (1536)), a residual
// add, the bias gradient's column sum and a full sum. Part of bench/.
#include "bench_util.h"
#include "core/ops.h"

namespace cw::bench {
namespace {

constexpr int64_t kF32 = 4;

void BM_gelu(benchmark::State& state) {
  const Tensor x = ops::randn({kTokens, kHidden});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::gelu(x));
  set_bytes(state, 2 * x.numel() * kF32);
}

// gx = gy * gelu'(x), the rule autograd runs for gelu.
void BM_gelu_backward(benchmark::State& state) {
  const Tensor x = ops::randn({kTokens, kHidden}), gy = ops::randn({kTokens, kHidden});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::unary_backward(UnaryOp::GeluErf, x, Tensor(), gy));
  set_bytes(state, 3 * x.numel() * kF32);
}

// (2048, 1536) + (1536): the bias of a Linear, broadcast over rows.
void BM_add_row_broadcast(benchmark::State& state) {
  const Tensor x = ops::randn({kTokens, kHidden}), b = ops::randn({kHidden});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::add(x, b));
  set_bytes(state, 2 * x.numel() * kF32);
}

// (2048, 1536) + (2048, 1536): a residual add, same shapes.
void BM_add_same_shape(benchmark::State& state) {
  const Tensor x = ops::randn({kTokens, kHidden}), y = ops::randn({kTokens, kHidden});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::add(x, y));
  set_bytes(state, 3 * x.numel() * kF32);
}

// Sum over rows, (2048, 1536) -> (1536): the bias gradient of a Linear (ops::sum_to).
void BM_sum_rows(benchmark::State& state) {
  const Tensor x = ops::randn({kTokens, kHidden});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::sum(x, {0}));
  set_bytes(state, x.numel() * kF32);
}

// Sum of all elements to a scalar, as the loss `sum(y)` of the autograd Linear benchmark.
void BM_sum_all(benchmark::State& state) {
  const Tensor x = ops::randn({kTokens, kHidden});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::sum(x));
  set_bytes(state, x.numel() * kF32);
}

}  // namespace

BENCHMARK(BM_gelu)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_gelu_backward)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_add_row_broadcast)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_add_same_shape)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_sum_rows)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_sum_all)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace cw::bench
