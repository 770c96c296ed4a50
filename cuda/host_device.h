// CW_HD marks small functions that both the kernels (nvcc, device) and the no-GPU tests (g++,
// host) compile: the index math of the kernels is checked on the CPU against the CPU backend,
// even on machines without a GPU. Internal to cuda/.
#pragma once

#ifndef CW_HD
#ifdef __CUDACC__
#define CW_HD __host__ __device__ __forceinline__
#else
#define CW_HD inline
#endif
#endif
