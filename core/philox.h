// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) and the
// mapping of its words to a uniform double: the one random-number formula of the framework,
// compiled for the host (CPU backend, data/) and the device (cuda/copy_random.cu), so that a
// draw gives element i the same number on every backend. Part of core/; the stream's state is
// core/generator.h.
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace cw {

// One block: 4 random 32-bit words.
struct Philox4 {
  uint32_t v[4];
  CW_HD uint32_t operator[](int i) const { return v[i]; }
};

// The block for a 128-bit counter and a 64-bit key (10 rounds, Random123's constants).
CW_HD Philox4 philox4x32(uint64_t counter_lo, uint64_t counter_hi, uint64_t key) {
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t{0xD2511F53} * c0;
    const uint64_t p1 = uint64_t{0xCD9E8D57} * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9;
    k1 += 0xBB67AE85;
  }
  return {{c0, c1, c2, c3}};
}

// Uniform in [0, 1) from two words: 53 random bits, the full precision of a double (24 would do
// for f32, but f64 gradient checks want finer values).
CW_HD double uniform_double(uint32_t a, uint32_t b) {
  const uint64_t bits = (uint64_t{a} << 21) ^ uint64_t { b };
  return static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) * (1.0 / 9007199254740992.0);
}

}  // namespace cw
