// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the
// mapping of its words to a uniform double, and dropout's keep bits: the one random-number
// formula of the framework, compiled for the host (CPU backend, data/) and the device
// (cuda/copy_random.cu), so that a draw gives element i the same number on every backend (the
// CPU's AVX2 form of the rounds, core/cpu/philox_avx2.h, is tested equal to this one). Part of core/; the
// stream's state is core/generator.h.
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace cw {

// One block: 4 random 32-bit words.
struct Philox4 {
  uint32_t v[4];
  CW_HD uint32_t operator[](int i) const { return v[i]; }
};

// One of the 10 rounds (Random123's multipliers): two 32 x 32 -> 64-bit products, xors with the
// other words and the round key, and the word permutation.
CW_HD void philox_round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
  const uint64_t p0 = uint64_t{0xD2511F53} * c0;
  const uint64_t p1 = uint64_t{0xCD9E8D57} * c2;
  const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
  const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
  c1 = static_cast<uint32_t>(p1);
  c3 = static_cast<uint32_t>(p0);
  c0 = n0;
  c2 = n2;
}

// The key schedule: the round key advances by the Weyl constants after every round.
constexpr uint32_t kPhiloxW0 = 0x9E3779B9, kPhiloxW1 = 0xBB67AE85;

// The block for a 128-bit counter and a 64-bit key (10 rounds, Random123's constants).
CW_HD Philox4 philox4x32(uint64_t counter_lo, uint64_t counter_hi, uint64_t key) {
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    philox_round(c0, c1, c2, c3, k0, k1);
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return {{c0, c1, c2, c3}};
}

// The blocks (first + j, 0, key) for j < N at once: out[w][j] is word w of block first + j, the
// numbers of N calls of philox4x32(first + j, 0, key), in the lane layout dropout's stream reads
// (below). GCC vectorizes the lane loop, but it measured no faster than one block at a time (AVX2
// has no 8-lane 32 x 32 -> 64-bit multiply), hence core/cpu/philox_avx2.h for the CPU's hot path.
template <int N>
CW_HD void philox4x32_lanes(uint64_t first, uint64_t key, uint32_t (&out)[4][N]) {
  uint32_t* c0 = out[0];
  uint32_t* c1 = out[1];
  uint32_t* c2 = out[2];
  uint32_t* c3 = out[3];
  for (int j = 0; j < N; ++j) {
    const uint64_t c = first + static_cast<uint64_t>(j);
    c0[j] = static_cast<uint32_t>(c);
    c1[j] = static_cast<uint32_t>(c >> 32);
    c2[j] = 0;
    c3[j] = 0;
  }
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    for (int j = 0; j < N; ++j) philox_round(c0[j], c1[j], c2[j], c3[j], k0, k1);
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
}

// Uniform in [0, 1) from two words: 53 random bits, the full precision of a double (24 would do
// for f32, but f64 gradient checks want finer values).
CW_HD double uniform_double(uint32_t a, uint32_t b) {
  const uint64_t bits = (uint64_t{a} << 21) ^ uint64_t { b };
  return static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) * (1.0 / 9007199254740992.0);
}

// ---- dropout's keep bits ----
// Elements go in groups of 64, one 64-bit mask word per group. Group g of a draw at counter
// `offset` uses the 16 blocks offset + 16 g + j (j < 16), and its element 16 q + j is word q of
// block j: all four words of every block are used, and consecutive elements are consecutive
// lanes, so the CPU's loops over them vectorize. An element is kept when its word is >=
// dropout_threshold(p), an integer compare: P(keep) = 1 - p to within 2^-32. A draw of n elements
// takes kDropoutBlocks * ceil(n / 64) counters of the generator.
constexpr int64_t kDropoutGroup = 64;
constexpr int kDropoutBlocks = 16;

// floor(p * 2^32); p in [0, 1), so it fits in 32 bits.
CW_HD uint32_t dropout_threshold(double p) { return static_cast<uint32_t>(p * 4294967296.0); }

// The keep bits of group g: bit k is element 64 g + k (1 = kept).
CW_HD uint64_t dropout_keep_bits(uint64_t offset, uint64_t group, uint64_t key, uint32_t threshold) {
  uint32_t r[4][kDropoutBlocks];
  philox4x32_lanes<kDropoutBlocks>(offset + kDropoutBlocks * group, key, r);
  uint64_t bits = 0;
  for (int q = 0; q < 4; ++q) {
    for (int j = 0; j < kDropoutBlocks; ++j)
      bits |= static_cast<uint64_t>(r[q][j] >= threshold) << (kDropoutBlocks * q + j);
  }
  return bits;
}

}  // namespace cw
