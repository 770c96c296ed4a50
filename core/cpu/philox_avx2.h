// Philox4x32-10 eight blocks at a time in AVX2 registers, for the CPU's dropout: the same numbers
// as core/philox.h's philox4x32 (tests/core/ops_test.cpp checks the dropout stream element by
// element against it), computed as vectors because GCC's vectorization of the portable lane loop
// (philox4x32_lanes) ran no faster than one block at a time: AVX2 has no 32 x 32 -> 64-bit
// multiply of all eight lanes, so each round multiplies the even and the odd lanes separately
// (vpmuludq) and blends the halves back. Only where the build targets AVX2 (-march=native on
// this project's machines); the portable kernels serve the rest. Internal to core/cpu/.
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>

#include <cstdint>

#include "core/philox.h"

namespace cw::cpu {

// x (8 x u32) * m (a 32-bit constant in every 64-bit lane) -> the low and high words of the eight
// 64-bit products.
inline void mulhilo8(__m256i x, __m256i m, __m256i& lo, __m256i& hi) {
  const __m256i even = _mm256_mul_epu32(x, m);                        // lanes 0, 2, 4, 6
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m);  // lanes 1, 3, 5, 7
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// w[q] lane j = word q of philox4x32(first + j, 0, key), j < 8.
inline void philox4x32_x8(uint64_t first, uint64_t key, __m256i (&w)[4]) {
  alignas(32) uint32_t lo[8], hi[8];
  for (int j = 0; j < 8; ++j) {
    const uint64_t c = first + static_cast<uint64_t>(j);
    lo[j] = static_cast<uint32_t>(c);
    hi[j] = static_cast<uint32_t>(c >> 32);
  }
  __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
  __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
  __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
  const __m256i m0 = _mm256_set1_epi64x(0xD2511F53), m1 = _mm256_set1_epi64x(0xCD9E8D57);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {  // philox_round on eight blocks
    __m256i lo0, hi0, lo1, hi1;
    mulhilo8(c0, m0, lo0, hi0);
    mulhilo8(c2, m1, lo1, hi1);
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  w[0] = c0;
  w[1] = c1;
  w[2] = c2;
  w[3] = c3;
}

// All ones in the lanes where word >= threshold (unsigned): dropout's keep decision.
inline __m256i keep8(__m256i word, __m256i threshold) {
  return _mm256_cmpeq_epi32(_mm256_max_epu32(word, threshold), word);
}

}  // namespace cw::cpu

#endif
