// Which GEMM kernels OpenBLAS runs, and the fix when it guesses wrong. OpenBLAS (DYNAMIC_ARCH, as
// Debian builds it) picks its kernels from the CPU model once, when the library loads. Under
// hypervisors that hide the model (lscpu: "Intel(R) Xeon(R) Processor", AVX-512 in the flags) it
// falls back to its Prescott (SSE3) kernels: measured 4.8 GFLOP/s for a 1024^3 sgemm on one
// thread, against 29 with OPENBLAS_CORETYPE=SkylakeX on the same machine. Part of core/cpu.
#pragma once

#include <string>

namespace cw {

// The kernel family OpenBLAS chose ("SkylakeX", "Haswell", "Prescott", ...), or "" without OpenBLAS.
std::string blas_core_name();

// Called first thing in main(): when OpenBLAS chose Prescott kernels but the CPU has AVX-512 or
// AVX2+FMA, and OPENBLAS_CORETYPE is not set (the user's choice wins) nor CW_KEEP_BLAS_CORE, sets
// OPENBLAS_CORETYPE to SkylakeX or Haswell and re-executes the program (the variable is read only
// at load time), with one line on stderr saying so. Returns normally otherwise (also if the
// re-exec fails, with a warning: the run is slow but correct).
void reexec_with_fast_blas_kernels(char** argv);

}  // namespace cw
