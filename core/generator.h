// The seeded random generator: Philox4x32-10 (Salmon et al., SC'11), counter-based, so that
// element i of a draw depends only on (seed, offset, i). Draws are reproducible run to run,
// parallel kernels need no shared state, and a CUDA kernel reproduces the CPU's numbers.
// A Generator only hands out offsets; backends turn (seed, offset, i) into numbers. Part of core/.
#pragma once

#include <array>
#include <cstdint>

#include "core/philox.h"  // the numbers themselves

namespace cw {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  void manual_seed(uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  // Reserves counters for n draws and returns the offset of the first; the next call continues
  // after them, so two draws never overlap.
  uint64_t reserve(uint64_t n) {
    const uint64_t first = offset_;
    offset_ += n;
    return first;
  }
  // Checkpointing the RNG state is (seed, offset).
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide generator used when none is passed.
Generator& default_generator();
inline void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace cw
