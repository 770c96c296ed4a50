// A Linear layer through autograd, forward and backward, on the FFN's first projection:
// y = x @ W^T + b with x (2048, 384), W (1536, 384), b (1536), all requiring grad; loss = sum(y).
// Time covers graph recording, the three GEMMs (forward, dx, dW) and the bias reduction. bench/.
#include "autograd/functions.h"
#include "bench_util.h"

namespace cw::bench {
namespace {

void BM_linear_fwd_bwd(benchmark::State& state) {
  Variable x(ops::randn({kTokens, kModel}), true);
  Variable w(ops::randn({kHidden, kModel}), true);
  Variable b(ops::randn({kHidden}), true);
  FaultCounter faults(state);
  for (auto _ : state) {
    // Drop last iteration's gradients so backward writes them fresh instead of accumulating.
    x.zero_grad();
    w.zero_grad();
    b.zero_grad();
    const Variable y = ag::add(ag::matmul(x, ag::transpose(w, 0, 1)), b);
    ag::sum(y).backward();
    keep(w.grad());
  }
  // Three GEMMs of 2 * 2048 * 384 * 1536 flops each.
  set_gflops(state, 3 * 2.0 * kTokens * kModel * kHidden);
}

// The forward alone, recording the graph (inputs require grad) but not running backward.
void BM_linear_fwd(benchmark::State& state) {
  Variable x(ops::randn({kTokens, kModel}), true);
  Variable w(ops::randn({kHidden, kModel}), true);
  Variable b(ops::randn({kHidden}), true);
  FaultCounter faults(state);
  for (auto _ : state) keep(ag::add(ag::matmul(x, ag::transpose(w, 0, 1)), b).data());
  set_gflops(state, 2.0 * kTokens * kModel * kHidden);
}

// The same forward with plain ops, no Variables: separates autograd's cost from the kernels'.
void BM_linear_fwd_ops(benchmark::State& state) {
  const Tensor x = ops::randn({kTokens, kModel}), w = ops::randn({kHidden, kModel}),
               b = ops::randn({kHidden});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::add(ops::matmul(x, w.t()), b));
  set_gflops(state, 2.0 * kTokens * kModel * kHidden);
}

}  // namespace

BENCHMARK(BM_linear_fwd_ops)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_linear_fwd)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_linear_fwd_bwd)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace cw::bench
