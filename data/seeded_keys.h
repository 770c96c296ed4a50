// Keys and shuffles of the batch loaders (speech_loader, image_loader): pure functions of
// (seed, domain, epoch, batch), so a batch's content never depends on which thread made it or on
// whether the run was resumed. Header-only. Part of data/.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/generator.h"

namespace cw::data {

// splitmix64's finalizer: a bijective mix, so keys derived from (seed, epoch, batch) by chaining
// it differ whenever any part differs, and nearby seeds give unrelated streams.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The key of (seed, domain, epoch, batch); each loader names its own domains (row shuffle,
// augmentation, ...) so that two uses never share a key.
inline uint64_t derive_key(uint64_t seed, uint64_t domain, int64_t epoch, int64_t batch = 0) {
  return mix64(mix64(mix64(seed ^ mix64(domain)) ^ static_cast<uint64_t>(epoch)) ^
               static_cast<uint64_t>(batch));
}

// Fisher-Yates with one Philox block per swap: a pure function of the key. The swap partner is
// uniform in [0, i - 1] from a 53-bit float (bias below 1e-9 for data set sizes).
template <class T>
void seeded_shuffle(std::vector<T>& xs, uint64_t key) {
  for (size_t i = xs.size(); i > 1; --i) {
    const auto r = philox4x32(i - 1, 0, key);
    const auto j = static_cast<size_t>(
        std::min<double>(uniform_double(r[0], r[1]) * static_cast<double>(i), static_cast<double>(i - 1)));
    std::swap(xs[i - 1], xs[j]);
  }
}

}  // namespace cw::data
