// CPU copies (with dtype conversion), fills, ranges and Philox random draws (uniform, normal, and
// dropout with its keep bits).
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/philox_avx2.h"
#include "core/cpu/strided_loop.h"
#include "core/generator.h"

namespace cw::cpu {

Backend& cpu_backend() {
  static CpuBackend b;
  return b;
}

void CpuBackend::copy(const Tensor& src, Tensor& dst) {
  dispatch_all(src.dtype(), "copy", [&]<class S>() {
    dispatch_all(dst.dtype(), "copy", [&]<class D>() {
      const S* s = src.data<S>();
      D* d = dst.data<D>();
      for_each_row<2>(dst.shape(), {dst.strides(), src.strides()}, [&](auto base, int64_t n, auto step) {
        D* o = d + base[0];
        const S* i = s + base[1];
        if (step[0] == 1 && step[1] == 1) {
          for (int64_t k = 0; k < n; ++k) o[k] = static_cast<D>(i[k]);
        } else {
          for (int64_t k = 0; k < n; ++k) o[k * step[0]] = static_cast<D>(i[k * step[1]]);
        }
      });
    });
  });
}

void CpuBackend::fill(Tensor& dst, double value) {
  dispatch_all(dst.dtype(), "fill", [&]<class T>() {
    T* d = dst.data<T>();
    const T v = static_cast<T>(value);
    for_each_row<1>(dst.shape(), {dst.strides()}, [&](auto base, int64_t n, auto step) {
      for (int64_t k = 0; k < n; ++k) d[base[0] + k * step[0]] = v;
    });
  });
}

void CpuBackend::arange(Tensor& out, double start, double step) {
  dispatch_all(out.dtype(), "arange", [&]<class T>() {
    T* o = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) o[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
}

namespace {

// Element i of a draw uses Philox block (offset + i, key seed): independent of thread layout.
template <class T>
void fill_uniform(T* o, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const auto r = philox4x32(offset + static_cast<uint64_t>(i), 0, seed);
    T v = static_cast<T>(lo + (hi - lo) * uniform_double(r[0], r[1]));
    // Rounding to f32 can land exactly on hi; keep the interval half-open.
    if (v >= static_cast<T>(hi) && hi > lo) v = std::nextafter(static_cast<T>(hi), static_cast<T>(lo));
    o[i] = v;
  }
}

template <class T>
void fill_normal(T* o, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    // Box-Muller on two uniforms from one block; 1 - u keeps the log argument in (0, 1].
    const auto r = philox4x32(offset + static_cast<uint64_t>(i), 0, seed);
    const double u1 = 1.0 - uniform_double(r[0], r[1]);
    const double u2 = uniform_double(r[2], r[3]);
    o[i] = static_cast<T>(mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
  }
}

#if defined(__AVX2__)
// A full group of f32 in AVX2 registers (philox_avx2.h): element 16 q + 8 h + j is word q of block
// first + 8 h + j, the layout of core/philox.h's dropout stream; returns the group's keep bits.
uint64_t dropout_group_f32(const float* x, float* y, uint64_t first, uint64_t key, uint32_t threshold,
                           float scale) {
  const __m256i t = _mm256_set1_epi32(static_cast<int>(threshold));
  const __m256 s = _mm256_set1_ps(scale);
  uint64_t bits = 0;
  for (int h = 0; h < 2; ++h) {
    __m256i w[4];
    philox4x32_x8(first + 8 * h, key, w);
    for (int q = 0; q < 4; ++q) {
      const int k = 16 * q + 8 * h;
      const __m256 keep = _mm256_castsi256_ps(keep8(w[q], t));
      _mm256_storeu_ps(y + k, _mm256_and_ps(keep, _mm256_mul_ps(_mm256_loadu_ps(x + k), s)));
      bits |= static_cast<uint64_t>(_mm256_movemask_ps(keep)) << k;
    }
  }
  return bits;
}

// gx = g * scale where the group's bit is set, else 0: eight bits at a time become lane masks.
void dropout_backward_group_f32(const float* g, float* gx, uint64_t bits, float scale) {
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 s = _mm256_set1_ps(scale);
  for (int k = 0; k < 64; k += 8) {
    const __m256i b = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>((bits >> k) & 0xFF)), lane_bit);
    const __m256 keep = _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, lane_bit));
    _mm256_storeu_ps(gx + k, _mm256_and_ps(keep, _mm256_mul_ps(_mm256_loadu_ps(g + k), s)));
  }
}
#endif

// One 64-element group per iteration: its keep bits, then the scaled copy of the kept elements.
// Full f32 groups take the AVX2 path where built; the rest (f64, a partial last group) the
// portable formula of core/philox.h.
template <class T>
void dropout_groups(const T* x, T* y, int64_t* mask, int64_t n, double p, uint64_t seed, uint64_t offset) {
  const uint32_t threshold = dropout_threshold(p);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  const int64_t groups = (n + kDropoutGroup - 1) / kDropoutGroup;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t base = g * kDropoutGroup, m = std::min(kDropoutGroup, n - base);
#if defined(__AVX2__)
    if constexpr (std::is_same_v<T, float>) {
      if (m == kDropoutGroup) {
        const uint64_t first = offset + static_cast<uint64_t>(kDropoutBlocks * g);
        mask[g] = static_cast<int64_t>(dropout_group_f32(x + base, y + base, first, seed, threshold, scale));
        continue;
      }
    }
#endif
    const uint64_t bits = dropout_keep_bits(offset, static_cast<uint64_t>(g), seed, threshold);
    mask[g] = static_cast<int64_t>(bits);
    for (int64_t k = 0; k < m; ++k) y[base + k] = ((bits >> k) & 1) ? x[base + k] * scale : T(0);
  }
}

template <class T>
void dropout_backward_groups(const T* g, const int64_t* mask, T* gx, int64_t n, double p) {
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  const int64_t groups = (n + kDropoutGroup - 1) / kDropoutGroup;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t w = 0; w < groups; ++w) {
    const uint64_t bits = static_cast<uint64_t>(mask[w]);
    const int64_t base = w * kDropoutGroup, m = std::min(kDropoutGroup, n - base);
#if defined(__AVX2__)
    if constexpr (std::is_same_v<T, float>) {
      if (m == kDropoutGroup) {
        dropout_backward_group_f32(g + base, gx + base, bits, scale);
        continue;
      }
    }
#endif
    for (int64_t k = 0; k < m; ++k) gx[base + k] = ((bits >> k) & 1) ? g[base + k] * scale : T(0);
  }
}

}  // namespace

void CpuBackend::dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, Tensor& y, Tensor& mask) {
  dispatch_float(x.dtype(), "dropout", [&]<class T>() {
    dropout_groups<T>(x.data<T>(), y.data<T>(), mask.data<int64_t>(), x.numel(), p, seed, offset);
  });
}

void CpuBackend::dropout_backward(const Tensor& g, const Tensor& mask, double p, Tensor& gx) {
  dispatch_float(g.dtype(), "dropout_backward", [&]<class T>() {
    dropout_backward_groups<T>(g.data<T>(), mask.data<int64_t>(), gx.data<T>(), g.numel(), p);
  });
}

void CpuBackend::uniform(Tensor& out, uint64_t seed, uint64_t offset, double lo, double hi) {
  dispatch_float(out.dtype(), "uniform",
                 [&]<class T>() { fill_uniform<T>(out.data<T>(), out.numel(), seed, offset, lo, hi); });
}

void CpuBackend::normal(Tensor& out, uint64_t seed, uint64_t offset, double mean, double std) {
  dispatch_float(out.dtype(), "normal",
                 [&]<class T>() { fill_normal<T>(out.data<T>(), out.numel(), seed, offset, mean, std); });
}

}  // namespace cw::cpu
