// Entry point of cw_bench: Google Benchmark's main, plus context lines (OpenMP threads, which
// GEMM our matmul uses, Eigen's thread count) printed above every run so results are labelled.
// Part of bench/.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef CW_BENCH_GEMM
#define CW_BENCH_GEMM "unknown"
#endif

int main(int argc, char** argv) {
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  benchmark::AddCustomContext("omp_threads", std::to_string(threads));
  benchmark::AddCustomContext("eigen_threads", std::to_string(Eigen::nbThreads()));
  benchmark::AddCustomContext("cw_gemm", CW_BENCH_GEMM);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
