// Helpers shared by the cw_bench files: the transformer shapes every benchmark uses (MiniLM /
// BERT-small sized: d_model 384, FFN 1536, 12 heads of 32, sequence 128) and counter setters.
// Part of bench/.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdint>

#include "core/tensor.h"

namespace cw::bench {

// Tokens of a batch (16 sequences of 128), model width, FFN width.
constexpr int64_t kTokens = 2048, kModel = 384, kHidden = 1536;
// Attention scores: (batch * heads, T, T) = (8 * 12, 128, 128).
constexpr int64_t kAttnBatch = 8 * 12, kSeq = 128;

// Keeps the compiler from dropping the computation of t.
inline void keep(const Tensor& t) { benchmark::DoNotOptimize(t.raw_data()); }

// Reports `flops` floating-point operations per iteration as a GFLOP/s rate.
inline void set_gflops(benchmark::State& state, double flops) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Reports the bytes one iteration must move at least (inputs read once, outputs written once).
inline void set_bytes(benchmark::State& state, int64_t bytes) {
  state.SetBytesProcessed(state.iterations() * bytes);
}

// Minor page faults of this process so far: first touches of memory fresh from the kernel.
inline long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Declared before the timing loop, reports page faults per iteration when it goes out of scope.
// A high count means outputs are allocated from memory the allocator just returned to the
// kernel, so every iteration pays for zero-filling and mapping pages again.
class FaultCounter {
 public:
  explicit FaultCounter(benchmark::State& state) : state_(state), start_(minor_faults()) {}
  ~FaultCounter() {
    state_.counters["faults"] =
        benchmark::Counter(static_cast<double>(minor_faults() - start_), benchmark::Counter::kAvgIterations);
  }

 private:
  benchmark::State& state_;
  long start_;
};

}  // namespace cw::bench
