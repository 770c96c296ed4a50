// matmul f32 on the first Linear of a transformer FFN: (2048, 384) @ (384, 1536). Ours through
// cw::ops::matmul (OpenBLAS or Eigen: the cw_gemm context line) against raw Eigen GEMM, with and
// without W transposed (x @ W.t()); plus the Linear's backward GEMMs and batched attention scores.
#include <Eigen/Core>

#include "bench_util.h"
#include "core/ops.h"

namespace cw::bench {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr double kFlops = 2.0 * kTokens * kModel * kHidden;

// Ours: x (2048, 384) @ W (384, 1536); the output is allocated by the op, as in a real layer.
void BM_matmul_ours(benchmark::State& state) {
  const Tensor a = ops::randn({kTokens, kModel}), b = ops::randn({kModel, kHidden});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::matmul(a, b));
  set_gflops(state, kFlops);
}

// Ours: x @ W.t() with W (1536, 384), the nn.Linear layout; the kernel reads W.t() in place.
void BM_matmul_ours_wt(benchmark::State& state) {
  const Tensor a = ops::randn({kTokens, kModel}), w = ops::randn({kHidden, kModel});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::matmul(a, w.t()));
  set_gflops(state, kFlops);
}

// Raw Eigen on the same buffers: C.noalias() = A * B with row-major maps, C preallocated.
void BM_matmul_eigen(benchmark::State& state) {
  const Tensor a = ops::randn({kTokens, kModel}), b = ops::randn({kModel, kHidden});
  Tensor c = ops::empty({kTokens, kHidden});
  Eigen::Map<const RowMat> A(a.data<float>(), kTokens, kModel), B(b.data<float>(), kModel, kHidden);
  Eigen::Map<RowMat> C(c.data<float>(), kTokens, kHidden);
  FaultCounter faults(state);
  for (auto _ : state) {
    C.noalias() = A * B;
    keep(c);
  }
  set_gflops(state, kFlops);
}

// Raw Eigen, A * W^T with W (1536, 384) row-major: the same product as BM_matmul_ours_wt.
void BM_matmul_eigen_wt(benchmark::State& state) {
  const Tensor a = ops::randn({kTokens, kModel}), w = ops::randn({kHidden, kModel});
  Tensor c = ops::empty({kTokens, kHidden});
  Eigen::Map<const RowMat> A(a.data<float>(), kTokens, kModel), W(w.data<float>(), kHidden, kModel);
  Eigen::Map<RowMat> C(c.data<float>(), kTokens, kHidden);
  FaultCounter faults(state);
  for (auto _ : state) {
    C.noalias() = A * W.transpose();
    keep(c);
  }
  set_gflops(state, kFlops);
}

// The Linear's backward GEMMs, as autograd runs them (see autograd/rules_linalg.cpp):
// dx = g @ W, (2048, 1536) @ (1536, 384), where the forward used W.t().
void BM_matmul_ours_bwd_dx(benchmark::State& state) {
  const Tensor g = ops::randn({kTokens, kHidden}), w = ops::randn({kHidden, kModel});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::matmul(g, w));
  set_gflops(state, kFlops);
}

// d(W.t()) = x.t() @ g, (384, 2048) @ (2048, 1536): x read transposed in place.
void BM_matmul_ours_bwd_dw(benchmark::State& state) {
  const Tensor x = ops::randn({kTokens, kModel}), g = ops::randn({kTokens, kHidden});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::matmul(x.t(), g));
  set_gflops(state, kFlops);
}

// Attention scores, batched: q (96, 128, 32) @ k^T (96, 32, 128), per-head small GEMMs.
void BM_matmul_ours_attn_qk(benchmark::State& state) {
  const int64_t d = kModel / 12;
  const Tensor q = ops::randn({kAttnBatch, kSeq, d}), k = ops::randn({kAttnBatch, kSeq, d});
  FaultCounter faults(state);
  for (auto _ : state) keep(ops::matmul(q, k.transpose(-1, -2)));
  set_gflops(state, 2.0 * kAttnBatch * kSeq * kSeq * d);
}

}  // namespace

BENCHMARK(BM_matmul_ours)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_matmul_ours_wt)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_matmul_eigen)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_matmul_eigen_wt)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_matmul_ours_bwd_dx)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_matmul_ours_bwd_dw)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_matmul_ours_attn_qk)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace cw::bench
