// Flush-to-zero for subnormal floats on the CPU. Attention's softmax makes probabilities far below
// 1e-38 for keys a query ignores; x86 computes with such subnormal values tens of times slower, and
// the backward passes multiply them again. Measured on the Whisper tower's training step (K = 1,
// batch 32 x 3 s): backward 6.2 s -> 1.1 s with flush-to-zero, forward unchanged (BENCHMARKS.md).
// Values below 1.2e-38 become 0, as on GPUs and in PyTorch's torch.set_flush_denormal(True).
// Part of core/cpu.
#pragma once

namespace cw {

// Sets (or clears) the FTZ and DAZ bits of MXCSR on the calling thread and on every thread of the
// OpenMP pool (threads started later inherit the calling thread's setting). A no-op off x86.
void set_flush_denormals(bool on);

}  // namespace cw
