// The machine line every benchmark prints in its header: the CPU model (/proc/cpuinfo) and the
// fp32 arithmetic limit measured on it, so that a FLOP/s figure can be read as a fraction of what
// the cores can do. The limit is a loop of independent fused multiply-adds on all OpenMP threads
// (12 accumulators: enough to cover FMA latency 4 x 2 ports), in AVX2 and, where the CPU has it,
// AVX-512 (the build itself is AVX2, see the GCC workaround in CMakeLists.txt; OpenBLAS picks
// AVX-512 kernels at run time, so its GEMMs can reach the AVX-512 figure). Part of bench/.
#pragma once

#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

namespace cw::bench {

inline std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

// Each returns the FLOPs it did: iters x 12 accumulators x lanes x 2 (multiply + add).
__attribute__((target("avx2,fma"))) inline double fma_loop_avx2(int64_t iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t k = 0; k < iters; ++k) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  volatile float sink = _mm256_cvtss_f32(s);  // keeps the loop alive
  (void)sink;
  return static_cast<double>(iters) * 12 * 8 * 2;
}

__attribute__((target("avx512f"))) inline double fma_loop_avx512(int64_t iters) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t k = 0; k < iters; ++k) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  // (stored and summed by hand: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized)
  alignas(64) float lanes[16];
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  _mm512_store_ps(lanes, s);
  volatile float sink = lanes[0] + lanes[15];
  (void)sink;
  return static_cast<double>(iters) * 12 * 16 * 2;
}

// GFLOP/s of `loop` on all OpenMP threads at once: the best of 5 runs of ~0.05 s each (the best,
// because a shared machine only ever slows a run down).
template <class Loop>
double fma_peak_gflops(Loop loop) {
  constexpr int64_t kIters = 2'000'000;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    double flops = 0;
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : flops)
    flops += loop(kIters);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flops / s / 1e9);
  }
  return best;
}

struct MachineInfo {
  std::string cpu;
  int threads = 0;
  double avx2_gflops = 0, avx512_gflops = 0;  // 0: the CPU lacks AVX-512
  // The limit a FLOP/s figure is compared against: the widest vectors the CPU runs.
  double limit_gflops() const { return avx512_gflops > 0 ? avx512_gflops : avx2_gflops; }
};

inline MachineInfo measure_machine() {
  MachineInfo m;
  m.cpu = cpu_model();
  m.threads = omp_get_max_threads();
  m.avx2_gflops = fma_peak_gflops(fma_loop_avx2);
  if (__builtin_cpu_supports("avx512f")) m.avx512_gflops = fma_peak_gflops(fma_loop_avx512);
  return m;
}

// "machine  <cpu>, N OpenMP threads, fp32 FMA limit X GFLOP/s (AVX-512; AVX2 Y GFLOP/s)"
inline MachineInfo print_machine_header(const char* prefix = "ours ") {
  const MachineInfo m = measure_machine();
  if (m.avx512_gflops > 0) {
    std::printf(
        "%s machine: %s, %d OpenMP threads, measured fp32 FMA limit %.1f GFLOP/s (AVX-512; AVX2 %.1f)\n",
        prefix, m.cpu.c_str(), m.threads, m.avx512_gflops, m.avx2_gflops);
  } else {
    std::printf("%s machine: %s, %d OpenMP threads, measured fp32 FMA limit %.1f GFLOP/s (AVX2)\n", prefix,
                m.cpu.c_str(), m.threads, m.avx2_gflops);
  }
  std::fflush(stdout);
  return m;
}

}  // namespace cw::bench
