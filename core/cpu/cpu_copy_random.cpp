// CPU copies (with dtype conversion), fills, ranges and Philox random draws.
#include <cmath>

#include "core/cpu/cpu_backend.h"
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

}  // namespace

void CpuBackend::uniform(Tensor& out, uint64_t seed, uint64_t offset, double lo, double hi) {
  dispatch_float(out.dtype(), "uniform",
                 [&]<class T>() { fill_uniform<T>(out.data<T>(), out.numel(), seed, offset, lo, hi); });
}

void CpuBackend::normal(Tensor& out, uint64_t seed, uint64_t offset, double mean, double std) {
  dispatch_float(out.dtype(), "normal",
                 [&]<class T>() { fill_normal<T>(out.data<T>(), out.numel(), seed, offset, mean, std); });
}

}  // namespace cw::cpu
