// OpenBLAS kernel choice (see blas_kernels.h).
#include "core/cpu/blas_kernels.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#ifdef CW_HAVE_CBLAS
#include <cblas.h>
#endif

namespace cw {

std::string blas_core_name() {
#ifdef CW_HAVE_CBLAS
  const char* name = openblas_get_corename();
  return name ? std::string(name) : std::string();
#else
  return {};
#endif
}

void reexec_with_fast_blas_kernels(char** argv) {
#ifdef CW_HAVE_CBLAS
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("CW_KEEP_BLAS_CORE")) return;
  const std::string core = blas_core_name();
  if (core != "Prescott" && core != "prescott") return;
  __builtin_cpu_init();
  const char* better = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    better = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    better = "Haswell";
  if (!better) return;
  std::cerr << "cwcl: OpenBLAS chose its Prescott (SSE3) kernels on a CPU with "
            << (std::string(better) == "SkylakeX" ? "AVX-512" : "AVX2")
            << "; restarting with OPENBLAS_CORETYPE=" << better
            << " (about 6x faster GEMM; set OPENBLAS_CORETYPE or CW_KEEP_BLAS_CORE=1 to choose)\n";
  setenv("OPENBLAS_CORETYPE", better, 1);
  execv("/proc/self/exe", argv);
  std::cerr << "cwcl: re-executing failed; continuing with the slow kernels\n";
#else
  (void)argv;
#endif
}

}  // namespace cw
