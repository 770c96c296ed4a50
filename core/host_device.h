// CW_HD marks small inline functions that both backends compile: nvcc builds them for the
// device (the CUDA kernels in cuda/), g++ for the host (the CPU backend and the no-GPU tests).
// A formula the two backends share is written once under CW_HD (philox.h, kernel_math.h, and
// cuda/'s *_math.h headers), so the two can only differ where a library differs. Part of core/.
#pragma once

#ifndef CW_HD
#ifdef __CUDACC__
#define CW_HD __host__ __device__ __forceinline__
#else
#define CW_HD inline
#endif
#endif
